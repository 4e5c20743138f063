// Package audioplay plays synthesized speech through libaudioplay (cgo).
//
//	p, err := audioplay.New(audioplay.Config{Rate: 22050, Channels: 1, Format: audioplay.S16})
//	defer p.Close()
//	io.Copy(p, pcm)          // a Player is an io.Writer of raw PCM in its format
//	p.Drain(5 * time.Second)
//
// Events come from the poll queue (PollEvent), never from C callbacks, so nothing runs on a
// foreign thread.
package audioplay

/*
#cgo pkg-config: audioplay
#include <stdlib.h>
#include <audioplay.h>
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Format of the PCM written to a Player.
type Format int

const (
	S16 Format = C.AP_FORMAT_S16
	F32 Format = C.AP_FORMAT_F32
)

// Error is a failed call: Status is the ApStatus code.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// ErrTimeout is returned by Drain when the timeout passes first.
var ErrTimeout = &Error{Status: int(C.AP_ERR_TIMEOUT), Msg: "timed out"}

// Config holds the common settings; zero values take the library's defaults.
type Config struct {
	Rate, Channels int
	Format         Format
	Device         string
	WriteTimeoutMs int
	StartThreshold time.Duration
}

// Event is something the listener heard.
type Event struct {
	Kind    string
	ID      uint64
	Frame   uint64
	HeardMs float64
}

var kinds = map[C.uint32_t]string{1: "marker", 2: "utterance_start", 3: "utterance_end",
	4: "underrun_start", 5: "underrun_end", 6: "device_changed", 7: "flushed"}

// Player is one playback queue on an output device. Safe for concurrent use.
type Player struct {
	p          *C.ApPlayer
	frameBytes int
}

func status(st C.ApStatus) error {
	if st == C.AP_OK {
		return nil
	}
	return &Error{Status: int(st), Msg: C.GoString(C.ap_strerror(C.int32_t(st)))}
}

// New creates a player on the system default output (or cfg.Device).
func New(cfg Config) (*Player, error) {
	var c C.ApConfig
	C.ap_config_init(&c)
	if cfg.Rate != 0 {
		c.input_rate = C.uint32_t(cfg.Rate)
	}
	if cfg.Channels != 0 {
		c.input_channels = C.uint32_t(cfg.Channels)
	}
	if cfg.Format != 0 {
		c.input_format = C.ApFormat(cfg.Format)
	}
	if cfg.WriteTimeoutMs != 0 {
		c.write_timeout_ms = C.uint32_t(cfg.WriteTimeoutMs)
	}
	c.start_threshold_ms = C.uint32_t(cfg.StartThreshold / time.Millisecond)
	if cfg.Device != "" {
		d := C.CString(cfg.Device)
		defer C.free(unsafe.Pointer(d))
		c.device_id = d
	}
	var p *C.ApPlayer
	if err := status(C.ap_create(&c, &p)); err != nil {
		return nil, fmt.Errorf("audioplay: create: %w", err)
	}
	size := 2
	if c.input_format == C.AP_FORMAT_F32 {
		size = 4
	}
	return &Player{p: p, frameBytes: size * int(c.input_channels)}, nil
}

func (p *Player) check(st C.ApStatus, call string) error {
	if st == C.AP_OK {
		return nil
	}
	buf := make([]byte, 256)
	C.ap_last_error(p.p, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return &Error{Status: int(st), Msg: fmt.Sprintf("audioplay: %s: %s (%s)", call,
		C.GoString(C.ap_strerror(C.int32_t(st))), C.GoString((*C.char)(unsafe.Pointer(&buf[0]))))}
}

// Write queues raw PCM in the player's format (io.Writer): it returns once all of b is
// queued, waiting for room as needed. len(b) must be whole frames.
func (p *Player) Write(b []byte) (int, error) {
	if len(b)%p.frameBytes != 0 {
		return 0, &Error{Status: int(C.AP_ERR_INVALID_ARG), Msg: "audioplay: write: not a whole number of frames"}
	}
	done := 0
	for done < len(b) {
		var n C.size_t
		frames := (len(b) - done) / p.frameBytes
		if err := p.check(C.ap_write(p.p, unsafe.Pointer(&b[done]), C.size_t(frames), &n), "write"); err != nil {
			return done, err
		}
		done += int(n) * p.frameBytes
	}
	return done, nil
}

// WriteInt16 queues interleaved int16 samples.
func (p *Player) WriteInt16(s []int16) error {
	if len(s) == 0 {
		return nil
	}
	_, err := p.Write(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*2))
	return err
}

// Drain ends the utterance and waits until it has been heard (ErrTimeout if not in time).
func (p *Player) Drain(timeout time.Duration) error {
	st := C.ap_drain(p.p, C.uint32_t(timeout/time.Millisecond))
	if st == C.AP_ERR_TIMEOUT {
		return ErrTimeout
	}
	return p.check(st, "drain")
}

// EndUtterance marks the end of what was written as one utterance.
func (p *Player) EndUtterance() error { return p.check(C.ap_end_utterance(p.p), "end_utterance") }

// Mark places a marker at the write position; a "marker" event fires when it is heard.
func (p *Player) Mark(id uint64) error { return p.check(C.ap_mark(p.p, C.uint64_t(id)), "mark") }

// Flush barges in: drops the queue, fades out what plays, returns the frame being heard.
func (p *Player) Flush(fade time.Duration) (uint64, error) {
	var heard C.uint64_t
	err := p.check(C.ap_flush(p.p, C.uint32_t(fade/time.Millisecond), &heard), "flush")
	return uint64(heard), err
}

// Metrics is the subset of ApMetrics most callers want.
type Metrics struct {
	FramesWritten, FramesPlayed, FramesQueued, FramesFlushed, FramesDropped uint64
	Underruns, Recreates, ServerUnderflows                                  uint64
	StreamRate, DeviceRate, ContentRate                                     int
	Device                                                                  string
	CallbackP99Us                                                           float64
}

// Metrics reads the player's counters.
func (p *Player) Metrics() (Metrics, error) {
	var m C.ApMetrics
	m.struct_size = C.uint32_t(unsafe.Sizeof(m))
	if err := p.check(C.ap_metrics(p.p, &m), "metrics"); err != nil {
		return Metrics{}, err
	}
	return Metrics{
		FramesWritten: uint64(m.frames_written), FramesPlayed: uint64(m.frames_played),
		FramesQueued: uint64(m.frames_queued), FramesFlushed: uint64(m.frames_flushed),
		FramesDropped: uint64(m.frames_dropped), Underruns: uint64(m.underruns),
		Recreates: uint64(m.recreates), StreamRate: int(m.stream_rate),
		DeviceRate: int(m.device_rate), ContentRate: int(m.content_rate),
		Device: C.GoString(&m.device_id[0]), CallbackP99Us: float64(m.callback_us_p99),
		ServerUnderflows: uint64(m.server_underflows),
	}, nil
}

// PollEvent returns the next heard event, if any.
func (p *Player) PollEvent() (Event, bool, error) {
	var e C.ApEvent
	e.struct_size = C.uint32_t(unsafe.Sizeof(e))
	var n C.size_t
	if err := p.check(C.ap_poll_event(p.p, &e, &n), "poll_event"); err != nil || n == 0 {
		return Event{}, false, err
	}
	return Event{Kind: kinds[e.kind], ID: uint64(e.id), Frame: uint64(e.frame), HeardMs: float64(e.heard_ms)}, true, nil
}

// Close stops playback and frees the player. Calls on a closed Player return an error.
func (p *Player) Close() error {
	err := status(C.ap_destroy(p.p))
	p.p = nil
	return err
}

// Version is the library's version.
func Version() string { return C.GoString(C.ap_version()) }
