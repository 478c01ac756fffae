package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/robfig/cron/v3"
)

// minRotationPeriod is low so tests can drive rotation in seconds.
const minRotationPeriod = 5 * time.Second

// minRotationWindow is the shortest rotation_window: less leaves no time
// for even one retry.
const minRotationWindow = time.Minute

// rotationConfig says when a secret (a dual role's key or a provider's root)
// is rotated automatically: every Period, or at each Schedule time (cron,
// UTC), retrying failures for at most Window after the scheduled time.
type rotationConfig struct {
	Period   time.Duration `json:"period"`
	Schedule string        `json:"schedule"`
	Window   time.Duration `json:"window"`
	Disabled bool          `json:"disabled"`
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronSchedules holds parsed rotation schedules by their text: next and
// minInterval run for every role and provider at start-up and on every
// write, status read and job.
var cronSchedules parseCache[cron.Schedule]

// parseSchedule parses a cron expression, once per distinct text (errors
// are not cached; they are refused at write).
func parseSchedule(spec string) (cron.Schedule, error) {
	if s, ok := cronSchedules.get(spec); ok {
		return s, nil
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	cronSchedules.put(spec, s)
	return s, nil
}

func rotationFields(what string, isRole bool) map[string]*framework.FieldSchema {
	period := &framework.FieldSchema{Type: framework.TypeDurationSecond,
		Description: "Rotate " + what + " every this long (minimum 5s; 0 = no period). Exclusive with rotation_schedule."}
	f := map[string]*framework.FieldSchema{
		"rotation_period": period,
		"rotation_schedule": {Type: framework.TypeString,
			Description: "Rotate " + what + " at these times: a standard 5-field cron expression in UTC (e.g. \"0 3 * * SAT\") or a descriptor such as @daily. Exclusive with rotation_period."},
		"rotation_window": {Type: framework.TypeDurationSecond,
			Description: "With rotation_schedule: how long after a scheduled time a failed rotation keeps being retried before waiting for the next one (0 = until it succeeds; otherwise at least 1m and at most the schedule's interval)."},
	}
	if isRole {
		period.Default = int(defaultRolePeriod.Seconds())
		period.Description = "Rotate " + what + " every this long (default 2160h = 90 days; minimum 5s). Exclusive with rotation_schedule."
	} else {
		f["disable_automated_rotation"] = &framework.FieldSchema{Type: framework.TypeBool,
			Description: "Keep the rotation settings but do not rotate automatically (rotate-root still works)."}
	}
	return f
}

// parseRotation applies the rotation fields of a request on top of old.
func parseRotation(d *framework.FieldData, old rotationConfig, creating, isRole bool) (rotationConfig, *logical.Response) {
	r := old
	period, periodSet := durationField(d, "rotation_period")
	schedRaw, schedSet := d.GetOk("rotation_schedule")
	sched, _ := schedRaw.(string)
	if periodSet && period > 0 && schedSet && sched != "" {
		return r, logical.ErrorResponse("rotation_period and rotation_schedule are mutually exclusive; set one")
	}
	if creating && isRole && !periodSet && !(schedSet && sched != "") {
		period, periodSet = defaultRolePeriod, true
	}
	if periodSet {
		if period < 0 || (period > 0 && period < minRotationPeriod) {
			return r, logical.ErrorResponse("rotation_period must be at least %s (or 0 for none)", minRotationPeriod)
		}
		r.Period = period
		if period > 0 {
			r.Schedule = ""
		}
	}
	if schedSet {
		if sched != "" {
			if _, err := parseSchedule(sched); err != nil {
				return r, logical.ErrorResponse("rotation_schedule: not a valid cron expression: %s", err.Error())
			}
			r.Period = 0
		}
		r.Schedule = sched
	}
	w, windowSet := durationField(d, "rotation_window")
	if windowSet {
		if w < 0 || (w > 0 && w < minRotationWindow) {
			return r, logical.ErrorResponse("rotation_window must be at least %s (or 0: retry until the rotation succeeds)", minRotationWindow)
		}
		r.Window = w
	}
	var gap time.Duration
	if r.Schedule != "" {
		s, _ := parseSchedule(r.Schedule)
		if s == nil || s.Next(time.Now().UTC()).IsZero() {
			return r, logical.ErrorResponse("rotation_schedule: %q never fires (no time matches it)", r.Schedule)
		}
		if gap = r.minInterval(time.Now()); gap < minRotationPeriod {
			return r, logical.ErrorResponse("rotation_schedule: rotations would be %s apart; the minimum is %s", gap, minRotationPeriod)
		}
	}
	if r.Window > 0 && r.Schedule == "" {
		return r, logical.ErrorResponse("rotation_window applies only with rotation_schedule")
	}
	if r.Window > gap && (windowSet || schedSet) {
		return r, logical.ErrorResponse("rotation_window (%s) must be at most the schedule's interval (%s): retries would run into the next scheduled time", r.Window, gap)
	}
	if isRole && r.Period == 0 && r.Schedule == "" {
		return r, logical.ErrorResponse("rotation_period: a dual role needs rotation_period or rotation_schedule")
	}
	if v, ok := d.GetOk("disable_automated_rotation"); ok {
		r.Disabled = v.(bool)
	}
	return r, nil
}

// automated reports whether anything is to be rotated on a timer.
func (r rotationConfig) automated() bool {
	return !r.Disabled && (r.Period > 0 || r.Schedule != "")
}

// next returns the first rotation time after last (zero when none is due
// on a timer).
func (r rotationConfig) next(last time.Time) time.Time {
	switch {
	case r.Disabled:
		return time.Time{}
	case r.Period > 0:
		return last.Add(r.Period)
	case r.Schedule != "":
		s, err := parseSchedule(r.Schedule)
		if err != nil {
			return time.Time{}
		}
		return s.Next(last.UTC())
	}
	return time.Time{}
}

func (r rotationConfig) fill(data map[string]any) {
	data["rotation_period"] = int64(r.Period.Seconds())
	data["rotation_schedule"] = r.Schedule
	data["rotation_window"] = int64(r.Window.Seconds())
}

// minInterval is the shortest time between two automated rotations from
// now: the period, or the smallest gap among the schedule's next times.
func (r rotationConfig) minInterval(now time.Time) time.Duration {
	if r.Period > 0 {
		return r.Period
	}
	if r.Schedule == "" {
		return 0
	}
	s, err := parseSchedule(r.Schedule)
	if err != nil {
		return 0
	}
	var least time.Duration
	t := s.Next(now.UTC())
	for i := 0; i < 8 && !t.IsZero(); i++ {
		n := s.Next(t)
		if n.IsZero() {
			break // fires once more at most (e.g. only on a 29 February)
		}
		if gap := n.Sub(t); least == 0 || gap < least {
			least = gap
		}
		t = n
	}
	return least
}
