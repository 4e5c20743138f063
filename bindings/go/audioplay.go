// Package audioplay plays synthesized speech through libaudioplay (cgo, no other
// dependencies).
//
//	import audioplay "github.com/audioplay/audioplay/bindings/go"
//
//	p, err := audioplay.New(audioplay.Config{Rate: 22050, Channels: 1, Format: audioplay.S16})
//	if err != nil { ... }             // errors.Is(err, audioplay.ErrInvalidArg), reason in err
//	defer p.Close()
//	go func() { for e := range p.Events() { ... } }()   // heard markers, utterance ends, ...
//	_, err = p.Write(ctx, pcm)        // raw PCM in the player's format; ctx cancels the wait
//	err = p.Drain(ctx)                // returns once everything written has been heard
//
// A Player is safe for concurrent use. Write and Drain wait in short slices of the C calls
// (which cannot be interrupted), so cancelling their context returns ctx.Err() within about
// 25 ms. Close from another goroutine makes them return an error wrapping ErrClosed.
//
// Events come from the library's poll queue (ap_poll_event), read by a goroutine, never from
// C callbacks: no Go code runs on the library's threads.
//
// The library is found with pkg-config (package audioplay): install it (scripts/install.sh)
// under a prefix pkg-config and the dynamic linker search, or point PKG_CONFIG_PATH and
// LD_LIBRARY_PATH at another prefix.
package audioplay

/*
#cgo pkg-config: audioplay
#include <stdlib.h>
#include <audioplay.h>
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Format of the PCM written to a Player.
type Format int

// The two sample formats, native endian, interleaved.
const (
	S16 Format = C.AP_FORMAT_S16 // signed 16-bit
	F32 Format = C.AP_FORMAT_F32 // 32-bit float, nominal range [-1, 1]
)

func (f Format) String() string {
	switch f {
	case S16:
		return "S16"
	case F32:
		return "F32"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

func (f Format) sampleBytes() int {
	if f == F32 {
		return 4
	}
	return 2
}

// Quality of the library's resampler.
type Quality int

// Resampler qualities (ApConfig.resample_quality).
const (
	QualityDefault Quality = 0                   // the library's default (linear)
	QualityLinear  Quality = C.AP_QUALITY_LINEAR // linear interpolation, the cheapest
	QualityHigh    Quality = C.AP_QUALITY_HIGH   // polyphase windowed sinc
)

// HeaderVersion is the version of the audioplay.h this package was compiled against;
// Version() is the loaded library's.
const HeaderVersion = C.AP_VERSION_STRING

// Version is the loaded library's version ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.ap_version()) }

// Config holds the common settings. Every zero value takes the library's default; the
// library checks ranges and its reason comes back in the error (New).
type Config struct {
	Rate     int    // content sample rate in Hz, 1000..384000 (default 22050)
	Channels int    // interleaved channels, 1..32 (default 1)
	Format   Format // S16 (default) or F32
	Device   string // output device id (see Devices); "" follows the system default

	TargetLatency     time.Duration // device buffer target, 2 ms..1 s (default 20 ms)
	RingCapacity      time.Duration // queue capacity, 10 ms..60 s of content (default 2 s)
	StartThreshold    time.Duration // pre-roll before an utterance starts (default 0: at once)
	IdleSuspend       time.Duration // pause the device stream after this long idle (default 0: never)
	DeviceLostTimeout time.Duration // Write/Drain give ErrNoOutput after this long without output (default 10 s)
	ResampleQuality   Quality       // QualityLinear (default) or QualityHigh
	KeepAwake         time.Duration // suspend the device stream after this long idle (default 30 s; negative: never)
	WakePreroll       time.Duration // silence before the first frame after a suspend (default 0)
	TrimThreshold     float64       // drop an utterance's leading silence below this magnitude (0..1; default 0: off)
	TrimKeep          time.Duration // leading silence kept before the first sound when trimming (default 10 ms; negative: none)

	// How the sound server shows, remembers and routes the stream ("" takes the default).
	ApplicationName string // application.name (default: the program's name)
	ApplicationID   string // application.id, reverse-DNS (default: none)
	StreamName      string // media.name (default "Speech")
	MediaRole       string // media.role (default "a11y"; "none" sets no role)
}

// writeSlice and drainSlice bound how long one C call blocks, so a cancelled context is
// noticed within about that long.
const (
	writeSlice = 20 * time.Millisecond
	drainSlice = 25 * time.Millisecond
)

// ms converts a duration field to whole milliseconds for the C config, rejecting what the
// C field cannot carry.
func ms(op, field string, d time.Duration) (C.uint32_t, error) {
	switch {
	case d < 0:
		return 0, invalid(op, "%s %v is negative", field, d)
	case d > 0 && d < time.Millisecond:
		return 0, invalid(op, "%s %v is less than the 1ms resolution", field, d)
	case d/time.Millisecond > math.MaxUint32:
		return 0, invalid(op, "%s %v is too long", field, d)
	}
	return C.uint32_t(d / time.Millisecond), nil
}

// ramp converts a fade/ramp length (the library clamps it to 10 s).
func ramp(op, field string, d time.Duration) (C.uint32_t, error) {
	if d < 0 {
		return 0, invalid(op, "%s %v is negative", field, d)
	}
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	return C.uint32_t(d / time.Millisecond), nil
}

func count(op, field string, v int) (C.uint32_t, error) {
	if v < 0 {
		return 0, invalid(op, "%s %d is negative", field, v)
	}
	if uint64(v) > math.MaxUint32 {
		return 0, invalid(op, "%s %d is too large", field, v)
	}
	return C.uint32_t(v), nil
}

func checkFormat(op string, f Format) error {
	if f != S16 && f != F32 {
		return invalid(op, "format %d is neither S16 nor F32", int(f))
	}
	return nil
}

func checkID(op, field, id string) error {
	if strings.IndexByte(id, 0) >= 0 {
		return invalid(op, "%s %q contains a NUL byte", field, id)
	}
	if !utf8.ValidString(id) {
		return invalid(op, "%s %q is not valid UTF-8", field, id)
	}
	return nil
}

// Player is one playback queue on an output device. Safe for concurrent use; Close it.
type Player struct {
	mu sync.Mutex  // guards h (read briefly by every call, cleared by Close)
	h  *C.ApPlayer // nil once closed

	// format<<40 | channels<<32 | rate of what Write takes now (changed by SetInputFormat).
	input atomic.Uint64

	eventsOnce sync.Once
	events     chan Event
	stop       chan struct{} // closed by Close: the event pump ends
	pumpDone   chan struct{}
}

func packInput(f Format, channels, rate uint32) uint64 {
	return uint64(f)<<40 | uint64(channels)<<32 | uint64(rate)
}

func (p *Player) inputFormat() (f Format, channels int) {
	v := p.input.Load()
	return Format(v >> 40), int(v >> 32 & 0xff)
}

func (p *Player) frameBytes() int {
	f, ch := p.inputFormat()
	return f.sampleBytes() * ch
}

// New creates a player on the system default output (or cfg.Device). On failure the error
// wraps the status sentinel (ErrInvalidArg, ErrNoDevice, ErrDevice) and carries the
// library's reason, which names the offending field.
func New(cfg Config) (*Player, error) {
	const op = "create"
	var c C.ApConfig
	C.ap_config_init(&c)
	var err error
	set := func(dst *C.uint32_t, field string, v int) {
		if err == nil && v != 0 {
			*dst, err = count(op, field, v)
		}
	}
	setMs := func(dst *C.uint32_t, field string, d time.Duration) {
		if err == nil && d != 0 {
			*dst, err = ms(op, field, d)
		}
	}
	set(&c.input_rate, "Config.Rate", cfg.Rate)
	set(&c.input_channels, "Config.Channels", cfg.Channels)
	setMs(&c.target_latency_ms, "Config.TargetLatency", cfg.TargetLatency)
	setMs(&c.ring_capacity_ms, "Config.RingCapacity", cfg.RingCapacity)
	setMs(&c.start_threshold_ms, "Config.StartThreshold", cfg.StartThreshold)
	setMs(&c.idle_suspend_ms, "Config.IdleSuspend", cfg.IdleSuspend)
	setMs(&c.device_lost_timeout_ms, "Config.DeviceLostTimeout", cfg.DeviceLostTimeout)
	if cfg.KeepAwake < 0 {
		c.keep_awake_ms = 0 // never suspend
	} else {
		setMs(&c.keep_awake_ms, "Config.KeepAwake", cfg.KeepAwake)
	}
	setMs(&c.wake_preroll_ms, "Config.WakePreroll", cfg.WakePreroll)
	if cfg.TrimKeep < 0 {
		c.trim_keep_ms = 0
	} else {
		setMs(&c.trim_keep_ms, "Config.TrimKeep", cfg.TrimKeep)
	}
	if err == nil && cfg.TrimThreshold != 0 {
		if math.IsNaN(cfg.TrimThreshold) || cfg.TrimThreshold < 0 || cfg.TrimThreshold > 1 {
			err = invalid(op, "Config.TrimThreshold %v is not in 0..1", cfg.TrimThreshold)
		}
		c.trim_threshold = C.float(cfg.TrimThreshold)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Format != 0 {
		if err := checkFormat(op, cfg.Format); err != nil {
			return nil, err
		}
		c.input_format = C.ApFormat(cfg.Format)
	}
	switch cfg.ResampleQuality {
	case QualityDefault:
	case QualityLinear, QualityHigh:
		c.resample_quality = C.ApResampleQuality(cfg.ResampleQuality)
	default:
		return nil, invalid(op, "Config.ResampleQuality %d is neither QualityLinear nor QualityHigh", int(cfg.ResampleQuality))
	}
	// Write waits for room itself, in short C calls, so that a context can cancel it.
	c.write_timeout_ms = C.uint32_t(writeSlice / time.Millisecond)
	if cfg.Device != "" {
		if err := checkID(op, "Config.Device", cfg.Device); err != nil {
			return nil, err
		}
		d := C.CString(cfg.Device)
		defer C.free(unsafe.Pointer(d))
		c.device_id = d
	}
	for _, f := range []struct {
		name  string
		value string
		field **C.char
	}{
		{"Config.ApplicationName", cfg.ApplicationName, &c.application_name},
		{"Config.ApplicationID", cfg.ApplicationID, &c.application_id},
		{"Config.StreamName", cfg.StreamName, &c.stream_name},
		{"Config.MediaRole", cfg.MediaRole, &c.media_role},
	} {
		if f.value == "" {
			continue
		}
		if err := checkID(op, f.name, f.value); err != nil {
			return nil, err
		}
		v := C.CString(f.value)
		defer C.free(unsafe.Pointer(v))
		*f.field = v
	}
	var h *C.ApPlayer
	reason := (*C.char)(C.calloc(512, 1))
	defer C.free(unsafe.Pointer(reason))
	if st := C.ap_create_ex(&c, &h, reason, 512); st != C.AP_OK {
		return nil, &Error{Op: op, Code: int(st), Reason: C.GoString(reason)}
	}
	p := &Player{h: h, stop: make(chan struct{})}
	p.input.Store(packInput(Format(c.input_format), uint32(c.input_channels), uint32(c.input_rate)))
	// A Player dropped without Close still frees its threads and its server connection.
	runtime.SetFinalizer(p, (*Player).Close)
	return p, nil
}

// handle returns the C handle, or nil once closed. The handle is not held: a call that
// races with Close gets AP_ERR_BAD_HANDLE / AP_ERR_CLOSED from the library (handles are
// never reused), which fail() reports as ErrClosed.
func (p *Player) handle() *C.ApPlayer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.h
}

// fail turns a status into an error with the player's last error message.
func (p *Player) fail(h *C.ApPlayer, st C.ApStatus, op string) error {
	if st == C.AP_OK {
		return nil
	}
	if st == C.AP_ERR_CLOSED || (st == C.AP_ERR_BAD_HANDLE && p.handle() == nil) {
		return closedErr(op)
	}
	var buf [512]C.char
	reason := ""
	if C.ap_last_error(h, &buf[0], C.size_t(len(buf))) == C.AP_OK {
		reason = C.GoString(&buf[0])
	}
	return &Error{Op: op, Code: int(st), Reason: reason}
}

// call runs one C call on the live handle.
func (p *Player) call(op string, f func(h *C.ApPlayer) C.ApStatus) error {
	h := p.handle()
	if h == nil {
		return closedErr(op)
	}
	return p.fail(h, f(h), op)
}

func checkCtx(op string, ctx context.Context) error {
	if ctx == nil {
		return invalid(op, "nil context (use context.Background())")
	}
	return nil
}

// Write queues raw interleaved PCM in the player's current format (see SetInputFormat),
// waiting for room as needed. It returns len(b) once all of it is queued, or, when ctx is
// done first, the bytes queued so far (whole frames) and ctx.Err(). len(b) must be a whole
// number of frames.
func (p *Player) Write(ctx context.Context, b []byte) (int, error) {
	const op = "write"
	if err := checkCtx(op, ctx); err != nil {
		return 0, err
	}
	fb := p.frameBytes()
	if len(b)%fb != 0 {
		f, ch := p.inputFormat()
		return 0, invalid(op, "%d bytes is not a whole number of %d-byte frames (%v, %d channels)", len(b), fb, f, ch)
	}
	done := 0
	for done < len(b) {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		h := p.handle()
		if h == nil {
			return done, closedErr(op)
		}
		var n C.size_t
		frames := (len(b) - done) / fb
		st := C.ap_write(h, unsafe.Pointer(&b[done]), C.size_t(frames), &n)
		done += int(n) * fb
		if err := p.fail(h, st, op); err != nil {
			return done, err
		}
	}
	return done, nil
}

// WriteInt16 queues interleaved int16 samples (an S16 player; len(s) whole frames).
func (p *Player) WriteInt16(ctx context.Context, s []int16) error {
	if f, _ := p.inputFormat(); f != S16 {
		return invalid("write", "WriteInt16 on a player that takes %v", f)
	}
	if len(s) == 0 {
		return checkCtx("write", ctx)
	}
	_, err := p.Write(ctx, unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*2))
	return err
}

// WriteFloat32 queues interleaved float32 samples (an F32 player; len(s) whole frames).
func (p *Player) WriteFloat32(ctx context.Context, s []float32) error {
	if f, _ := p.inputFormat(); f != F32 {
		return invalid("write", "WriteFloat32 on a player that takes %v", f)
	}
	if len(s) == 0 {
		return checkCtx("write", ctx)
	}
	_, err := p.Write(ctx, unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*4))
	return err
}

type ctxWriter struct {
	p   *Player
	ctx context.Context
}

func (w ctxWriter) Write(b []byte) (int, error) { return w.p.Write(w.ctx, b) }

// Writer is the player as an io.Writer whose writes wait under ctx (for io.Copy). Copy
// whole frames: io.Copy's buffer sizes are, for mono S16 and anything that divides 32 KiB.
func (p *Player) Writer(ctx context.Context) io.Writer { return ctxWriter{p, ctx} }

// Drain ends the utterance and waits until everything written has been heard. When ctx is
// done first it returns ctx.Err() (the audio keeps playing; Flush stops it).
func (p *Player) Drain(ctx context.Context) error {
	const op = "drain"
	if err := checkCtx(op, ctx); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := p.handle()
		if h == nil {
			return closedErr(op)
		}
		st := C.ap_drain(h, C.uint32_t(drainSlice/time.Millisecond))
		if st != C.AP_ERR_TIMEOUT {
			return p.fail(h, st, op)
		}
	}
}

// EndUtterance marks the end of what was written as one utterance (UtteranceEnd fires when
// its last frame is heard). Returns at once.
func (p *Player) EndUtterance() error {
	return p.call("end_utterance", func(h *C.ApPlayer) C.ApStatus { return C.ap_end_utterance(h) })
}

// Mark places marker id at the write position; a Marker event with this id fires when the
// listener hears that frame.
func (p *Player) Mark(id uint64) error {
	return p.call("mark", func(h *C.ApPlayer) C.ApStatus { return C.ap_mark(h, C.uint64_t(id)) })
}

// Flush barges in: drops the queue, fades out what plays over fade (0 = cut; at most 10 s),
// returns the content frame being heard when it was asked for. Returns at once; a Flushed
// event reports where the fade ended.
func (p *Player) Flush(fade time.Duration) (uint64, error) {
	const op = "flush"
	f, err := ramp(op, "fade", fade)
	if err != nil {
		return 0, err
	}
	var heard C.uint64_t
	err = p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_flush(h, f, &heard) })
	return uint64(heard), err
}

// Pause fades playback out over r (at most 10 s) and holds the position; writes still queue.
func (p *Player) Pause(r time.Duration) error {
	const op = "pause"
	v, err := ramp(op, "ramp", r)
	if err != nil {
		return err
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_pause(h, v) })
}

// Resume continues after Pause, fading in over r (at most 10 s).
func (p *Player) Resume(r time.Duration) error {
	const op = "resume"
	v, err := ramp(op, "ramp", r)
	if err != nil {
		return err
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_resume(h, v) })
}

// SetVolume sets the output gain (linear, 0..4; 1 = unchanged), ramped over r so it never
// steps.
func (p *Player) SetVolume(gain float64, r time.Duration) error {
	const op = "set_volume"
	if math.IsNaN(gain) || math.IsInf(gain, 0) || gain < 0 || gain > 4 {
		return invalid(op, "gain %v is not in 0..4", gain)
	}
	v, err := ramp(op, "ramp", r)
	if err != nil {
		return err
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_set_volume(h, C.float(gain), v) })
}

// SetGainPan sets gain (linear, 0..4) and pan (-1 hard left .. 1 hard right; equal-power with
// unity at the centre, ignored on a mono device) in band, from the next frame written,
// ramped over r. utteranceOnly: for this utterance (the next goes back to the last
// until-changed setting); else until changed. Above unity a soft limiter prevents clipping.
func (p *Player) SetGainPan(gain, pan float64, r time.Duration, utteranceOnly bool) error {
	const op = "set_gain_pan"
	if math.IsNaN(gain) || math.IsInf(gain, 0) || gain < 0 || gain > 4 {
		return invalid(op, "gain %v is not in 0..4", gain)
	}
	if math.IsNaN(pan) || math.IsInf(pan, 0) || pan < -1 || pan > 1 {
		return invalid(op, "pan %v is not in -1..1", pan)
	}
	v, err := ramp(op, "ramp", r)
	if err != nil {
		return err
	}
	scope := C.uint32_t(C.AP_GAIN_UNTIL_CHANGED)
	if utteranceOnly {
		scope = C.AP_GAIN_UTTERANCE
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus {
		return C.ap_set_gain_pan(h, C.float(gain), C.float(pan), v, scope)
	})
}

// SetSpeed sets the speed without pitch change (0.5..4; 1 = as written, a bypass) in band:
// audio written from now on plays at speed; the change is crossfaded. Positions and event
// frames stay content frames; markers fire when their frame is heard.
func (p *Player) SetSpeed(speed float64) error {
	const op = "set_speed"
	if math.IsNaN(speed) || speed < 0.5 || speed > 4 {
		return invalid(op, "speed %v is not in 0.5..4", speed)
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_set_speed(h, C.float(speed)) })
}

// SetInputFormat is a voice change, in band: what was written before plays in its old
// format, what Write takes from now on is format/channels/rate. The device stream is not
// recreated. Call it from the goroutine that writes.
func (p *Player) SetInputFormat(format Format, channels, rate int) error {
	const op = "set_input_format"
	if err := checkFormat(op, format); err != nil {
		return err
	}
	ch, err := count(op, "channels", channels)
	if err != nil {
		return err
	}
	r, err := count(op, "rate", rate)
	if err != nil {
		return err
	}
	err = p.call(op, func(h *C.ApPlayer) C.ApStatus {
		return C.ap_set_input_format(h, C.ApFormat(format), ch, r)
	})
	if err == nil {
		p.input.Store(packInput(format, uint32(ch), uint32(r)))
	}
	return err
}

// InputFormat is what Write takes now.
func (p *Player) InputFormat() (format Format, channels, rate int) {
	v := p.input.Load()
	return Format(v >> 40), int(v >> 32 & 0xff), int(uint32(v))
}

// Device is one output device as the system lists it.
type Device struct {
	ID       string // pass to Config.Device or SetDevice
	Name     string // for people
	Rate     int    // native sample rate
	Channels int    // native channel count
	Default  bool   // the system default output
}

// Devices lists the system's output devices. It opens its own connection to the audio
// system (the library reports no reason text for this call, only the status).
func Devices() ([]Device, error) {
	for attempt := 0; ; attempt++ {
		var n C.size_t
		if st := C.ap_list_devices(nil, 0, &n); st != C.AP_OK {
			return nil, &Error{Op: "list_devices", Code: int(st)}
		}
		if n == 0 {
			return []Device{}, nil
		}
		buf := (*C.ApDeviceInfo)(C.calloc(n, C.size_t(unsafe.Sizeof(C.ApDeviceInfo{}))))
		if buf == nil {
			return nil, &Error{Op: "list_devices", Code: int(C.AP_ERR_BUFFER_TOO_SMALL), Reason: "out of memory"}
		}
		infos := unsafe.Slice(buf, int(n))
		var got C.size_t
		st := C.ap_list_devices(buf, n, &got)
		if st != C.AP_OK {
			C.free(unsafe.Pointer(buf))
			return nil, &Error{Op: "list_devices", Code: int(st)}
		}
		if got > n && attempt < 3 { // a device appeared between the two calls
			C.free(unsafe.Pointer(buf))
			continue
		}
		if got < n {
			infos = infos[:got]
		}
		out := make([]Device, len(infos))
		for i, d := range infos {
			out[i] = Device{ID: C.GoString(&d.id[0]), Name: C.GoString(&d.name[0]),
				Rate: int(d.rate), Channels: int(d.channels), Default: d.is_default != 0}
		}
		C.free(unsafe.Pointer(buf))
		return out, nil
	}
}

// SetDevice moves playback to device id ("" follows the system default) without losing
// anything queued. It returns once the move is requested (an error wrapping ErrNoDevice if
// id is not present); a DeviceChanged event fires when it is done.
func (p *Player) SetDevice(id string) error {
	const op = "set_device"
	if err := checkID(op, "id", id); err != nil {
		return err
	}
	var cid *C.char
	if id != "" {
		cid = C.CString(id)
		defer C.free(unsafe.Pointer(cid))
	}
	return p.call(op, func(h *C.ApPlayer) C.ApStatus { return C.ap_set_device(h, cid) })
}

// Position is where playback is.
type Position struct {
	Heard   uint64        // the content frame the listener hears now (monotonic)
	Queued  uint64        // content frames waiting in the queue
	Latency time.Duration // the device's output latency
}

// Position reads where playback is, from atomics only (cheap enough to poll).
func (p *Player) Position() (Position, error) {
	var heard, queued C.uint64_t
	var lat C.double
	err := p.call("position", func(h *C.ApPlayer) C.ApStatus { return C.ap_position(h, &heard, &queued, &lat) })
	if err != nil {
		return Position{}, err
	}
	return Position{Heard: uint64(heard), Queued: uint64(queued), Latency: msDuration(float64(lat))}, nil
}

func msDuration(v float64) time.Duration {
	if v < 0 || math.IsNaN(v) {
		return -1
	}
	return time.Duration(v * float64(time.Millisecond))
}

// Close stops playback (discarding what is queued), frees the player and closes the Events
// channel. Calls blocked in Write or Drain on other goroutines return an error wrapping
// ErrClosed; so does every later call, Close included.
func (p *Player) Close() error {
	p.mu.Lock()
	h := p.h
	p.h = nil
	p.mu.Unlock()
	if h == nil {
		return closedErr("close")
	}
	runtime.SetFinalizer(p, nil)
	close(p.stop)
	// Events() from now on gets a closed channel; a pump it started before ends now.
	p.eventsOnce.Do(func() { p.events = make(chan Event) })
	if p.pumpDone != nil {
		<-p.pumpDone
		// What was heard before Close and not yet polled still reaches the channel, as far
		// as its buffer has room.
		for full := false; !full; {
			e, ok := pollOne(h)
			if !ok {
				break
			}
			select {
			case p.events <- e:
			default:
				full = true
			}
		}
	}
	st := C.ap_destroy(h)
	close(p.events)
	if st != C.AP_OK {
		return &Error{Op: "close", Code: int(st)}
	}
	return nil
}
