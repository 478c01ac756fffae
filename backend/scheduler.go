package backend

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"
)

// defaultWorkers bounds how many rotations run at once per mount; each
// provider's max_concurrency further bounds calls to that provider.
const defaultWorkers = 32

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

	mu      sync.Mutex
	queue   itemQueue
	items   map[string]*queued
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
	item  string
	due   time.Time
	index int
}

func newScheduler(c clock, run func(context.Context, string) time.Time) *scheduler {
	return &scheduler{
		clock: c, run: run, workers: defaultWorkers, jobTimeout: jobTimeout,
		items: map[string]*queued{}, running: map[string]bool{}, requeue: map[string]time.Time{},
		wake: make(chan struct{}, 1),
	}
}

// schedule sets when item is next due; a zero time removes it.
func (s *scheduler) schedule(item string, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[item] {
		s.requeue[item] = due
		return
	}
	s.setLocked(item, due)
}

func (s *scheduler) setLocked(item string, due time.Time) {
	q := s.items[item]
	switch {
	case due.IsZero() && q != nil:
		heap.Remove(&s.queue, q.index)
		delete(s.items, item)
	case due.IsZero():
		return
	case q != nil:
		q.due = due
		heap.Fix(&s.queue, q.index)
	default:
		q = &queued{item: item, due: due}
		heap.Push(&s.queue, q)
		s.items[item] = q
	}
	if s.queue.Len() > 0 && s.queue[0] == q {
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
	return s.queue.Len()
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
		now := s.clock.Now()
		var due []string
		for s.queue.Len() > 0 && !s.queue[0].due.After(now) && len(due) < s.workers {
			q := heap.Pop(&s.queue).(*queued)
			delete(s.items, q.item)
			s.running[q.item] = true
			due = append(due, q.item)
		}
		var wait time.Duration = -1
		if s.queue.Len() > 0 {
			wait = s.queue[0].due.Sub(now)
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

// itemQueue is a min-heap of queued items by due time.
type itemQueue []*queued

func (q itemQueue) Len() int { return len(q) }
func (q itemQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return strings.Compare(q[i].item, q[j].item) < 0
	}
	return q[i].due.Before(q[j].due)
}
func (q itemQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *itemQueue) Push(x any) {
	it := x.(*queued)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *itemQueue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*q = old[:n-1]
	return it
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
	return len(s.running) == 0 && (!s.started || s.queue.Len() == 0 || s.queue[0].due.After(s.clock.Now()))
}
