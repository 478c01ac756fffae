package backend

import (
	"context"
	"sync"
	"time"
)

// defaultWorkers bounds how many rotations run at once per mount; each
// provider's max_concurrency further bounds calls to that provider (the
// HTTP layer's semaphore, per request). There are more workers than a
// provider usually has slots: a rotation does storage work between its
// requests (WAL, key state), and with only as many workers as slots, a
// slot would wait for it; with more, another rotation's request takes it.
const defaultWorkers = 64

// providerJobLimit is how many scheduled jobs of one provider may run at
// once, given its max_concurrency (0: not known): twice its slots, for
// the reason above, else half the workers, and never more than three
// quarters of them. Without it, the jobs of one slow, hung or rate-limited
// provider would take every worker, and other providers' rotations and
// retirements would wait behind them; with it, a quarter of the workers
// is always left to the others, whatever one provider's max_concurrency.
func providerJobLimit(maxConcurrency int) int {
	if maxConcurrency <= 0 {
		return defaultWorkers / 2
	}
	return min(2*maxConcurrency, defaultWorkers*3/4)
}

// Scheduler items are "role/<name>" (a dual role's rotation and its
// previous key's retirement) and "root/<name>" (a provider's root rotation
// and pending revocations of old roots); "retire/<provider>/<incarnation>/<id>"
// is the revocation of a deleted dual role's key (retire.go); "tidy/auto"
// is auto-tidy.
func roleItem(name string) string { return "role/" + name }
func rootItem(name string) string { return "root/" + name }

// scheduler is a priority queue of due work keyed by time. Its loop sleeps
// until the earliest due item, so an idle mount costs nothing per role;
// due items run on a bounded pool of workers, and at most limit(p) jobs of
// one provider p at once. One item never runs twice at once. It runs only
// where the backend may write (see initialize).
type scheduler struct {
	clock   clock
	run     func(ctx context.Context, item string) time.Time
	workers int
	// jobTimeout bounds one job (jobTimeout; tests shorten it).
	jobTimeout time.Duration
	// provider names the provider an item's job calls ("": none, such as
	// auto-tidy's, which is not capped), and limit how many jobs of a
	// provider may run at once (at least 1). Both are asked when an item
	// is due, under the scheduler's lock: they must be cheap and must not
	// call the scheduler. Nil: no item has a provider.
	provider func(item string) string
	limit    func(provider string) int

	mu sync.Mutex
	// The queue (queue, pos) is a min-heap of the queued items by due
	// time. Entries are values: 100,000 idle roles cost two small slots
	// each, no allocation of their own.
	dueHeap
	// running maps each running item to its provider ("": none); active
	// is how many jobs hold a worker, inflight how many of them belong to
	// each provider.
	running  map[string]string
	active   int
	inflight map[string]int
	// parked holds, per provider, its due items that wait for one of its
	// running jobs to finish (it had limit of them); parkedBy maps a
	// parked item to its provider. A parked item is still queued: len,
	// idle, schedule and unschedule treat it as any other.
	parked   map[string]*dueHeap
	parkedBy map[string]string
	// requeue holds a due time set while the item was running; it wins
	// over the job's own answer, being newer.
	requeue map[string]time.Time

	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

type queued struct {
	item string
	due  int64 // Unix nanoseconds, saturated (see unixNano)
}

// dueHeap is a min-heap of items by (due, item); pos maps an item to its
// place in it.
type dueHeap struct {
	queue []queued
	pos   map[string]int32
}

func newScheduler(c clock, run func(context.Context, string) time.Time) *scheduler {
	return &scheduler{
		clock: c, run: run, workers: defaultWorkers, jobTimeout: jobTimeout,
		dueHeap: dueHeap{pos: map[string]int32{}}, running: map[string]string{}, inflight: map[string]int{},
		parked: map[string]*dueHeap{}, parkedBy: map[string]string{}, requeue: map[string]time.Time{},
		wake: make(chan struct{}, 1),
	}
}

// reserve makes room for n more items, for a load that knows how many.
func (s *scheduler) reserve(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 && n > cap(s.queue) {
		s.queue = make([]queued, 0, n)
		s.pos = make(map[string]int32, n)
	}
}

// schedule sets when item is next due; a zero time removes it.
func (s *scheduler) schedule(item string, due time.Time) {
	s.scheduleMany(1, func(int) (string, time.Time) { return item, due })
}

// scheduleMany schedules n items at once (item(i) due at due(i)), under
// one lock: start-up's many.
func (s *scheduler) scheduleMany(n int, at func(i int) (item string, due time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		item, due := at(i)
		if _, ok := s.running[item]; ok {
			s.requeue[item] = due
			continue
		}
		s.setLocked(item, due)
	}
}

func (s *scheduler) setLocked(item string, due time.Time) {
	if p, ok := s.parkedBy[item]; ok {
		// Back to the queue at its new time: if it is still due, the loop
		// parks it again, in its new place, while p has no room.
		s.unparkLocked(p, item)
	}
	if due.IsZero() {
		if i, ok := s.pos[item]; ok {
			s.removeLocked(int(i))
		}
		return
	}
	d, _ := unixNano(due)
	if s.set(item, d) {
		s.poke()
	}
}

// set queues item at d, or moves it there, and reports whether it is now
// the earliest.
func (h *dueHeap) set(item string, d int64) bool {
	if i, ok := h.pos[item]; ok {
		h.queue[i].due = d
		if !h.up(int(i)) {
			h.down(int(i))
		}
	} else {
		h.queue = append(h.queue, queued{item: item, due: d})
		h.pos[item] = int32(len(h.queue) - 1)
		h.up(len(h.queue) - 1)
	}
	return h.queue[0].item == item
}

// park puts a due item of provider p aside until p has room.
func (s *scheduler) parkLocked(p string, q queued) {
	h := s.parked[p]
	if h == nil {
		h = &dueHeap{pos: map[string]int32{}}
		s.parked[p] = h
	}
	h.set(q.item, q.due)
	s.parkedBy[q.item] = p
}

// unparkLocked takes a parked item of provider p out of its parked heap
// and returns its entry.
func (s *scheduler) unparkLocked(p, item string) queued {
	h := s.parked[p]
	i := h.pos[item]
	q := h.queue[i]
	h.removeLocked(int(i))
	if len(h.queue) == 0 {
		delete(s.parked, p)
	}
	delete(s.parkedBy, item)
	return q
}

func (s *scheduler) unschedule(item string) { s.schedule(item, time.Time{}) }

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// len is the number of queued items (parked ones included).
func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + len(s.parkedBy)
}

func (s *scheduler) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go s.loop(ctx)
}

// stop ends the loop and waits for running jobs to return. Queued items,
// parked ones included, stay queued for the next start.
func (s *scheduler) stop() {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return
	}
	s.started = false
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		now, _ := unixNano(s.clock.Now())
		var due []dispatched
		for {
			d, ok := s.nextLocked(now)
			if !ok {
				break
			}
			s.running[d.item] = d.provider
			s.active++
			if d.provider != "" {
				s.inflight[d.provider]++
			}
			due = append(due, d)
		}
		// Sleep until the earliest queued item is due, unless every
		// worker is busy: then until a job finishes (finish wakes the
		// loop, as it does when a parked item's provider gets room).
		// The timer is set for the due time itself, not for a wait counted
		// from now: the clock may move between here and the timer's start.
		var wakeAt int64
		sleepUntilDue := false
		full := s.active >= s.workers
		if len(s.queue) > 0 && !full {
			wakeAt, sleepUntilDue = s.queue[0].due, true
		}
		s.mu.Unlock()

		for _, d := range due {
			s.wg.Add(1)
			go func(d dispatched) {
				defer s.wg.Done()
				if ctx.Err() != nil {
					// Stopping: not run, still due.
					s.finish(d.item, time.Unix(0, d.due), false)
					return
				}
				jctx, cancel := context.WithTimeout(ctx, s.jobTimeout)
				next := s.run(jctx, d.item)
				cancel()
				s.finish(d.item, next, true)
			}(d)
		}
		if len(due) > 0 && !full {
			continue // more may be due already
		}

		var fire <-chan time.Time
		var t timer
		if sleepUntilDue {
			t = s.clock.TimerAt(time.Unix(0, wakeAt))
			fire = t.C()
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-s.wake:
		case <-fire:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// dispatched is an item taken from the queue to run.
type dispatched struct {
	item     string
	provider string
	due      int64
}

// nextLocked takes the next item to run at now, if a worker is free: the
// earliest due item whose provider has room, queued or parked. Due items
// of a provider with no room are parked on the way.
func (s *scheduler) nextLocked(now int64) (dispatched, bool) {
	for s.active < s.workers {
		// The earliest parked item whose provider now has room (a job of
		// it finished, or its limit went up). Few providers have parked
		// items, and none at rest.
		var from *dueHeap
		var fromP string
		for p, h := range s.parked {
			if s.inflight[p] < s.limitOf(p) && (from == nil || lessQueued(h.queue[0], from.queue[0])) {
				from, fromP = h, p
			}
		}
		if len(s.queue) > 0 && s.queue[0].due <= now && (from == nil || lessQueued(s.queue[0], from.queue[0])) {
			q := s.queue[0]
			s.removeLocked(0)
			p := s.providerOf(q.item)
			if p != "" && s.inflight[p] >= s.limitOf(p) {
				s.parkLocked(p, q)
				continue
			}
			return dispatched{item: q.item, provider: p, due: q.due}, true
		}
		if from == nil {
			break
		}
		q := s.unparkLocked(fromP, from.queue[0].item)
		return dispatched{item: q.item, provider: fromP, due: q.due}, true
	}
	return dispatched{}, false
}

func (s *scheduler) providerOf(item string) string {
	if s.provider == nil {
		return ""
	}
	return s.provider(item)
}

func (s *scheduler) limitOf(p string) int {
	if s.limit == nil {
		return s.workers
	}
	return max(1, s.limit(p))
}

// finish requeues an item after its job (or, ran false, instead of it): at
// the due time set while it ran if any, else at the job's answer.
func (s *scheduler) finish(item string, next time.Time, ran bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.running[item]
	delete(s.running, item)
	s.active--
	if p != "" {
		if s.inflight[p]--; s.inflight[p] <= 0 {
			delete(s.inflight, p)
		}
	}
	if d, ok := s.requeue[item]; ok {
		delete(s.requeue, item)
		if ran && !next.IsZero() && (d.IsZero() || next.Before(d)) {
			// The job's answer is fresher when it is sooner (e.g. a retry).
			d = next
		}
		next = d
	}
	s.setLocked(item, next)
	// A worker, and a slot of p, are free: due or parked items may run.
	s.poke()
}

// The heap order: by due time, then by item.
func lessQueued(a, b queued) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return a.item < b.item
}

func (h *dueHeap) less(i, j int) bool { return lessQueued(h.queue[i], h.queue[j]) }

func (h *dueHeap) swap(i, j int) {
	h.queue[i], h.queue[j] = h.queue[j], h.queue[i]
	h.pos[h.queue[i].item] = int32(i)
	h.pos[h.queue[j].item] = int32(j)
}

// up moves entry i towards the root while it is due before its parent,
// and reports whether it moved.
func (h *dueHeap) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.swap(i, p)
		i, moved = p, true
	}
	return moved
}

// down moves entry i towards the leaves while a child is due before it.
func (h *dueHeap) down(i int) {
	n := len(h.queue)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h.swap(i, c)
		i = c
	}
}

// removeLocked takes entry i out of the heap.
func (h *dueHeap) removeLocked(i int) {
	last := len(h.queue) - 1
	item := h.queue[i].item
	if i != last {
		h.swap(i, last)
	}
	h.queue[last] = queued{}
	h.queue = h.queue[:last]
	delete(h.pos, item)
	if i != last && !h.up(i) {
		h.down(i)
	}
}

func (s *scheduler) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// idle reports whether nothing is running and nothing is due now.
func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.running) > 0 {
		return false
	}
	now, _ := unixNano(s.clock.Now())
	return !s.started || (len(s.parkedBy) == 0 && (len(s.queue) == 0 || s.queue[0].due > now))
}
