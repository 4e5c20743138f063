package audioplay

/*
#include <audioplay.h>
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// EventKind says what happened (ApEvent.kind).
type EventKind int

// Event kinds.
const (
	Marker         EventKind = C.AP_EVENT_MARKER          // a Mark was heard; ID is its id
	UtteranceStart EventKind = C.AP_EVENT_UTTERANCE_START // an utterance's first frame was heard
	UtteranceEnd   EventKind = C.AP_EVENT_UTTERANCE_END   // its last frame was heard
	UnderrunStart  EventKind = C.AP_EVENT_UNDERRUN_START  // the queue ran dry while playing
	UnderrunEnd    EventKind = C.AP_EVENT_UNDERRUN_END    // audio plays again
	DeviceChanged  EventKind = C.AP_EVENT_DEVICE_CHANGED  // playback moved; ID is the new stream generation
	Flushed        EventKind = C.AP_EVENT_FLUSHED         // a Flush finished fading; Frame is where
	OutputLost     EventKind = C.AP_EVENT_OUTPUT_LOST     // no output at all; queued audio waits
	OutputRestored EventKind = C.AP_EVENT_OUTPUT_RESTORED // output is back; ID is the new generation
)

var kindNames = map[EventKind]string{
	Marker: "marker", UtteranceStart: "utterance_start", UtteranceEnd: "utterance_end",
	UnderrunStart: "underrun_start", UnderrunEnd: "underrun_end", DeviceChanged: "device_changed",
	Flushed: "flushed", OutputLost: "output_lost", OutputRestored: "output_restored",
}

func (k EventKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something that happened, delivered when the listener heard it.
type Event struct {
	Kind  EventKind
	ID    uint64        // marker id (Marker), stream generation (DeviceChanged, OutputRestored)
	Frame uint64        // the content frame it happened at
	Heard time.Duration // when it reached the listener, since the player was created
}

// eventPoll is how often the Events goroutine looks at the library's queue.
const eventPoll = 10 * time.Millisecond

func pollOne(h *C.ApPlayer) (Event, bool) {
	var e C.ApEvent
	e.struct_size = C.uint32_t(unsafe.Sizeof(e))
	var n C.size_t
	if C.ap_poll_event(h, &e, &n) != C.AP_OK || n == 0 {
		return Event{}, false
	}
	return Event{Kind: EventKind(e.kind), ID: uint64(e.id), Frame: uint64(e.frame),
		Heard: msDuration(float64(e.heard_ms))}, true
}

// PollEvent takes the next heard event, if any, without waiting. Use either PollEvent or
// Events, not both: they read the same queue.
func (p *Player) PollEvent() (Event, bool, error) {
	var e C.ApEvent
	e.struct_size = C.uint32_t(unsafe.Sizeof(e))
	var n C.size_t
	if err := p.call("poll_event", func(h *C.ApPlayer) C.ApStatus { return C.ap_poll_event(h, &e, &n) }); err != nil || n == 0 {
		return Event{}, false, err
	}
	return Event{Kind: EventKind(e.kind), ID: uint64(e.id), Frame: uint64(e.frame),
		Heard: msDuration(float64(e.heard_ms))}, true, nil
}

// Events returns the channel heard events arrive on, in order; Close closes it. The first
// call starts a goroutine that polls the library's queue every 10 ms. If the channel's
// buffer (256) fills because nobody reads, the goroutine waits and the library keeps the
// newest 4096 events (Metrics.EventsDropped counts the rest). Every call returns the same
// channel.
func (p *Player) Events() <-chan Event {
	p.eventsOnce.Do(func() {
		p.events = make(chan Event, 256)
		if p.handle() == nil {
			return // closed: Close closes the channel
		}
		p.pumpDone = make(chan struct{})
		go p.pump()
	})
	return p.events
}

func (p *Player) pump() {
	defer close(p.pumpDone)
	tick := time.NewTicker(eventPoll)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		for {
			h := p.handle()
			if h == nil {
				return
			}
			e, ok := pollOne(h)
			if !ok {
				break
			}
			select {
			case p.events <- e:
			case <-p.stop:
				return
			}
		}
	}
}
