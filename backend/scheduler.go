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

// Scheduler items are "role/<name>" (a dual role's rotation and its
// previous key's retirement) and "root/<name>" (a provider's root rotation
// and pending revocations of old roots); "tidy/auto" is auto-tidy.
func roleItem(name string) string { return "role/" + name }
func rootItem(name string) string { return "root/" + name }

// scheduler is a priority queue of due work keyed by time. Its loop sleeps
// until the earliest due item, so an idle mount costs nothing per role;
// due items run on a bounded pool of workers. One item never runs twice at
// once. It runs only where the backend may write (see initialize).
type scheduler struct {
	clock   clock
	run     func(ctx context.Context, item string) time.Time
	workers int
	// jobTimeout bounds one job (jobTimeout; tests shorten it).
	jobTimeout time.Duration

	mu sync.Mutex
	// queue is a min-heap of the queued items by due time; pos maps an
	// item to its place in it. Entries are values: 100,000 idle roles
	// cost two small slots each, no allocation of their own.
	queue   []queued
	pos     map[string]int32
	running map[string]bool
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

func newScheduler(c clock, run func(context.Context, string) time.Time) *scheduler {
	return &scheduler{
		clock: c, run: run, workers: defaultWorkers, jobTimeout: jobTimeout,
		pos: map[string]int32{}, running: map[string]bool{}, requeue: map[string]time.Time{},
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
		if s.running[item] {
			s.requeue[item] = due
			continue
		}
		s.setLocked(item, due)
	}
}

func (s *scheduler) setLocked(item string, due time.Time) {
	i, inQueue := s.pos[item]
	if due.IsZero() {
		if inQueue {
			s.removeLocked(int(i))
		}
		return
	}
	d, _ := unixNano(due)
	if inQueue {
		s.queue[i].due = d
		if !s.up(int(i)) {
			s.down(int(i))
		}
	} else {
		s.queue = append(s.queue, queued{item: item, due: d})
		s.pos[item] = int32(len(s.queue) - 1)
		s.up(len(s.queue) - 1)
	}
	if s.queue[0].item == item {
		s.poke()
	}
}

func (s *scheduler) unschedule(item string) { s.schedule(item, time.Time{}) }

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// len is the number of queued items.
func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
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

// stop ends the loop and waits for running jobs to return.
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
	slots := make(chan struct{}, s.workers)
	for {
		s.mu.Lock()
		now, _ := unixNano(s.clock.Now())
		var due []string
		for len(s.queue) > 0 && s.queue[0].due <= now && len(due) < s.workers {
			item := s.queue[0].item
			s.removeLocked(0)
			s.running[item] = true
			due = append(due, item)
		}
		var wait time.Duration = -1
		if len(s.queue) > 0 {
			wait = time.Duration(s.queue[0].due - now)
		}
		s.mu.Unlock()

		for _, item := range due {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				s.finish(item, time.Time{}, false)
				continue
			}
			s.wg.Add(1)
			go func(item string) {
				defer s.wg.Done()
				defer func() { <-slots }()
				jctx, cancel := context.WithTimeout(ctx, s.jobTimeout)
				next := s.run(jctx, item)
				cancel()
				s.finish(item, next, true)
			}(item)
		}
		if len(due) > 0 {
			continue // more may be due already
		}

		var fire <-chan time.Time
		var t timer
		if wait >= 0 {
			t = s.clock.NewTimer(wait)
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

// finish requeues an item after its job: at the due time set while it ran
// if any, else at the job's answer.
func (s *scheduler) finish(item string, next time.Time, ran bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, item)
	if d, ok := s.requeue[item]; ok {
		delete(s.requeue, item)
		if ran && !next.IsZero() && (d.IsZero() || next.Before(d)) {
			// The job's answer is fresher when it is sooner (e.g. a retry).
			d = next
		}
		next = d
	}
	s.setLocked(item, next)
}

// The queue's heap order: by due time, then by item.
func (s *scheduler) less(i, j int) bool {
	a, b := &s.queue[i], &s.queue[j]
	if a.due != b.due {
		return a.due < b.due
	}
	return a.item < b.item
}

func (s *scheduler) swap(i, j int) {
	s.queue[i], s.queue[j] = s.queue[j], s.queue[i]
	s.pos[s.queue[i].item] = int32(i)
	s.pos[s.queue[j].item] = int32(j)
}

// up moves entry i towards the root while it is due before its parent,
// and reports whether it moved.
func (s *scheduler) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.swap(i, p)
		i, moved = p, true
	}
	return moved
}

// down moves entry i towards the leaves while a child is due before it.
func (s *scheduler) down(i int) {
	n := len(s.queue)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && s.less(r, c) {
			c = r
		}
		if !s.less(c, i) {
			return
		}
		s.swap(i, c)
		i = c
	}
}

// removeLocked takes entry i out of the queue.
func (s *scheduler) removeLocked(i int) {
	last := len(s.queue) - 1
	item := s.queue[i].item
	if i != last {
		s.swap(i, last)
	}
	s.queue[last] = queued{}
	s.queue = s.queue[:last]
	delete(s.pos, item)
	if i != last && !s.up(i) {
		s.down(i)
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
	return !s.started || len(s.queue) == 0 || s.queue[0].due > now
}
