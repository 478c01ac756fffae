package backend

import "time"

// clock is the time source of the backend and its scheduler; tests inject
// a fake one so that rotation logic runs without sleeping.
type clock interface {
	Now() time.Time
	// TimerAt fires when the clock reaches at (at once if it has).
	TimerAt(at time.Time) timer
}

type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) TimerAt(at time.Time) timer { return realTimer{time.NewTimer(time.Until(at))} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
