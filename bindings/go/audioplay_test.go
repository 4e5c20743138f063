package audioplay

// Real playback: these tests need a PulseAudio server with at least two sinks (scripts/test.sh
// and scripts/test-binding-go.sh run them on the private harness server, sinks s48 and s16),
// and the installed library (pkg-config audioplay).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func tone16(freq float64, rate, frames, channels int) []int16 {
	s := make([]int16, frames*channels)
	for i := 0; i < frames; i++ {
		v := int16(12000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			s[i*channels+c] = v
		}
	}
	return s
}

func tone32(freq float64, rate, frames, channels int) []float32 {
	s := make([]float32, frames*channels)
	for i := 0; i < frames; i++ {
		v := float32(0.4 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			s[i*channels+c] = v
		}
	}
	return s
}

func newPlayer(t *testing.T, cfg Config) *Player {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nextEvent waits for the next event of one of the kinds wanted, skipping others.
func nextEvent(t *testing.T, ch <-chan Event, within time.Duration, kinds ...EventKind) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("events channel closed while waiting for %v", kinds)
			}
			for _, k := range kinds {
				if e.Kind == k {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", kinds, within)
		}
	}
}

func defaultDevice(t *testing.T) (Device, []Device) {
	t.Helper()
	devs, err := Devices()
	if err != nil {
		t.Fatal(err)
	}
	var def []Device
	for _, d := range devs {
		if d.Default {
			def = append(def, d)
		}
		if d.ID == "" || d.Rate <= 0 || d.Channels <= 0 {
			t.Fatalf("incomplete device %+v", d)
		}
	}
	if len(def) != 1 {
		t.Fatalf("want exactly one default device in %+v", devs)
	}
	return def[0], devs
}

func TestPlaysThroughTheServer(t *testing.T) {
	def, _ := defaultDevice(t)
	p := newPlayer(t, Config{Rate: 22050, Channels: 1, Format: S16})
	events := p.Events()
	if err := p.Mark(7); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.WriteInt16(timeout(t, 5*time.Second), tone16(440, 22050, 22050, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.EndUtterance(); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(timeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A second of audio takes a second to hear: Drain waited for the listener.
	if took := time.Since(start); took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("1 s of audio drained after %v", took)
	}
	m, err := p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.FramesWritten != 22050 || m.FramesPlayed != 22050 || m.FramesQueued != 0 || m.Underruns != 0 {
		t.Fatalf("after Drain: written %d played %d queued %d underruns %d",
			m.FramesWritten, m.FramesPlayed, m.FramesQueued, m.Underruns)
	}
	if m.DeviceID != def.ID || m.ContentRate != 22050 || m.StreamRate != def.Rate || m.Callbacks == 0 {
		t.Fatalf("metrics say device %q content %d stream %d callbacks %d; default is %+v",
			m.DeviceID, m.ContentRate, m.StreamRate, m.Callbacks, def)
	}
	// Events arrive on the channel in the order they were heard.
	s := nextEvent(t, events, 2*time.Second, UtteranceStart, Marker, UtteranceEnd)
	mk := nextEvent(t, events, 2*time.Second, UtteranceStart, Marker, UtteranceEnd)
	end := nextEvent(t, events, 2*time.Second, UtteranceStart, Marker, UtteranceEnd)
	if s.Kind != UtteranceStart || mk.Kind != Marker || mk.ID != 7 || end.Kind != UtteranceEnd {
		t.Fatalf("events %v, %v (id %d), %v", s.Kind, mk.Kind, mk.ID, end.Kind)
	}
	if end.Frame != 22050 || end.Heard-s.Heard < 900*time.Millisecond {
		t.Fatalf("utterance heard from %v to %v, end frame %d", s.Heard, end.Heard, end.Frame)
	}
}

func TestWriteCancelledWhileBlocked(t *testing.T) {
	p := newPlayer(t, Config{Rate: 16000, RingCapacity: 200 * time.Millisecond})
	pcm := tone16(300, 16000, 5*16000, 1) // 5 s: the 200 ms queue fills at once

	ctx := timeout(t, 300*time.Millisecond)
	start := time.Now()
	n, err := p.Write(ctx, int16Bytes(pcm))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
	if took < 280*time.Millisecond || took > 400*time.Millisecond {
		t.Fatalf("a 300 ms deadline returned after %v", took)
	}
	if n <= 0 || n >= len(pcm)*2 || n%2 != 0 {
		t.Fatalf("%d bytes queued of %d", n, len(pcm)*2)
	}
	m, _ := p.Metrics()
	if m.FramesWritten != uint64(n/2) {
		t.Fatalf("Write said %d frames, the library took %d", n/2, m.FramesWritten)
	}

	// Cancelled from another goroutine.
	ctx2, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(150 * time.Millisecond); cancel() }()
	start = time.Now()
	_, err = p.Write(ctx2, int16Bytes(pcm))
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 250*time.Millisecond {
		t.Fatalf("cancel after 150 ms: %v after %v", err, took)
	}

	// Already done: nothing is queued.
	before, _ := p.Metrics()
	if n, err := p.Write(ctx2, int16Bytes(pcm)); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context wrote %d: %v", n, err)
	}
	after, _ := p.Metrics()
	if after.FramesWritten != before.FramesWritten {
		t.Fatal("a cancelled context queued audio")
	}
}

func TestDrainCancelled(t *testing.T) {
	p := newPlayer(t, Config{Rate: 22050})
	if err := p.WriteInt16(context.Background(), tone16(500, 22050, 22050*3/2, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := p.Drain(timeout(t, 200*time.Millisecond))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || took < 190*time.Millisecond || took > 300*time.Millisecond {
		t.Fatalf("Drain with a 200 ms deadline: %v after %v", err, took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	start = time.Now()
	err = p.Drain(ctx)
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 200*time.Millisecond {
		t.Fatalf("Drain cancelled after 100 ms: %v after %v", err, took)
	}
	// Still playing: the cancelled drains did not wait for the end.
	m, _ := p.Metrics()
	if m.FramesPlayed >= m.FramesWritten {
		t.Fatalf("all %d frames played within %v", m.FramesWritten, time.Since(start))
	}
	// And a drain that is given the time completes.
	if err := p.Drain(timeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if m, _ := p.Metrics(); m.FramesPlayed != m.FramesWritten {
		t.Fatalf("played %d of %d", m.FramesPlayed, m.FramesWritten)
	}
	// PollEvent reads the same events without a channel; Drain ended the utterance.
	var kinds []EventKind
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		e, ok, err := p.PollEvent()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if len(kinds) > 0 && kinds[len(kinds)-1] == UtteranceEnd {
				break
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 2 || kinds[0] != UtteranceStart || kinds[1] != UtteranceEnd {
		t.Fatalf("polled %v", kinds)
	}
}

func int16Bytes(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		b[2*i], b[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return b
}

func TestErrClosed(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	events := p.Events()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]error{
		"Close":          p.Close(),
		"Drain":          p.Drain(ctx),
		"EndUtterance":   p.EndUtterance(),
		"Mark":           p.Mark(1),
		"Pause":          p.Pause(0),
		"Resume":         p.Resume(0),
		"SetVolume":      p.SetVolume(1, 0),
		"SetSpeed":       p.SetSpeed(1.5),
		"SetInputFormat": p.SetInputFormat(S16, 1, 16000),
		"SetDevice":      p.SetDevice(""),
		"WriteInt16":     p.WriteInt16(ctx, []int16{0}),
	}
	_, calls["Write"] = p.Write(ctx, []byte{0, 0})
	_, calls["Flush"] = p.Flush(0)
	_, calls["Position"] = p.Position()
	_, calls["Metrics"] = p.Metrics()
	_, calls["State"] = p.State()
	_, _, calls["PollEvent"] = p.PollEvent()
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: want ErrClosed, got %v", name, err)
		}
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(time.Second):
		t.Fatal("Events channel not closed by Close")
	}
	if _, ok := <-p.Events(); ok {
		t.Fatal("Events after Close is not closed")
	}
}

func TestCloseUnblocksWrite(t *testing.T) {
	p, err := New(Config{Rate: 16000, RingCapacity: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(context.Background(), int16Bytes(tone16(200, 16000, 10*16000, 1)))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Write after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Write still blocked 2 s after Close")
	}
	t.Logf("Close and the blocked Write's return took %v", time.Since(start))
}

func TestCreateErrorsCarryTheReason(t *testing.T) {
	cases := []struct {
		cfg  Config
		want error
		text string
	}{
		// The library's reason (ap_create_ex) names the field.
		{Config{Rate: 5}, ErrInvalidArg, "input_rate"},
		{Config{Channels: 99}, ErrInvalidArg, "input_channels"},
		{Config{TargetLatency: 5 * time.Second}, ErrInvalidArg, "target_latency_ms"},
		{Config{RingCapacity: 2 * time.Millisecond}, ErrInvalidArg, "ring_capacity_ms"},
		{Config{Device: "no-such-sink"}, ErrNoDevice, "no-such-sink"},
		// Rejected here, before the library: what the C fields cannot carry.
		{Config{Rate: -1}, ErrInvalidArg, "Config.Rate -1 is negative"},
		{Config{Channels: 1 << 40}, ErrInvalidArg, "Config.Channels"},
		{Config{Format: 9}, ErrInvalidArg, "format 9"},
		{Config{StartThreshold: -time.Second}, ErrInvalidArg, "Config.StartThreshold"},
		{Config{IdleSuspend: time.Microsecond}, ErrInvalidArg, "Config.IdleSuspend"},
		{Config{ResampleQuality: 7}, ErrInvalidArg, "Config.ResampleQuality"},
		{Config{Device: "a\x00b"}, ErrInvalidArg, "NUL"},
		{Config{Device: "\xff"}, ErrInvalidArg, "UTF-8"},
	}
	for _, c := range cases {
		p, err := New(c.cfg)
		if err == nil {
			p.Close()
			t.Errorf("New(%+v) succeeded", c.cfg)
			continue
		}
		var e *Error
		if !errors.Is(err, c.want) || !errors.As(err, &e) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("New(%+v): want %v mentioning %q, got %v", c.cfg, c.want, c.text, err)
		} else if e.Op != "create" || e.Reason == "" {
			t.Errorf("New(%+v): error %#v lacks its op or reason", c.cfg, e)
		}
	}
}

func TestPauseResumeVolumePosition(t *testing.T) {
	p := newPlayer(t, Config{Rate: 22050})
	if err := p.WriteInt16(context.Background(), tone16(440, 22050, 22050*3/2, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.SetVolume(0.5, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := p.Pause(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the fade and the device latency
	held, err := p.Position()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	still, _ := p.Position()
	if held.Heard == 0 || still.Heard != held.Heard || still.Queued == 0 || held.Latency < 0 {
		t.Fatalf("paused: heard %d then %d, queued %d, latency %v", held.Heard, still.Heard, still.Queued, held.Latency)
	}
	if m, _ := p.Metrics(); m.Underruns != 0 {
		t.Fatalf("a pause counted %d underruns", m.Underruns)
	}
	if err := p.Resume(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	moved, _ := p.Position()
	// About 300 ms of 22050 Hz audio heard since the resume.
	if d := moved.Heard - still.Heard; d < 22050/10 || d > 22050/2 {
		t.Fatalf("after resume heard %d frames in 300 ms", d)
	}
	if err := p.Drain(timeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	end, _ := p.Position()
	if end.Heard != 22050*3/2 || end.Queued != 0 {
		t.Fatalf("drained position %+v", end)
	}

	// Bad arguments: clear errors, nothing crashes.
	for name, err := range map[string]error{
		"gain NaN":      p.SetVolume(math.NaN(), 0),
		"gain -1":       p.SetVolume(-1, 0),
		"gain 5":        p.SetVolume(5, 0),
		"speed NaN":     p.SetSpeed(math.NaN()),
		"speed 0.49":    p.SetSpeed(0.49),
		"speed 4.01":    p.SetSpeed(4.01),
		"ramp -1s":      p.SetVolume(1, -time.Second),
		"Pause ramp -1": p.Pause(-time.Millisecond),
		"Resume ramp":   p.Resume(-time.Millisecond),
	} {
		if !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), strings.Fields(name)[1]) {
			t.Errorf("%s: want ErrInvalidArg naming it, got %v", name, err)
		}
	}
	if _, err := p.Flush(-time.Second); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "fade") {
		t.Errorf("Flush(-1s): %v", err)
	}
	if err := p.Drain(nil); !errors.Is(err, ErrInvalidArg) {
		t.Errorf("Drain(nil): %v", err)
	}
}

func TestVoiceChangeAndWrites(t *testing.T) {
	p := newPlayer(t, Config{Rate: 22050})
	ctx := timeout(t, 10*time.Second)
	// The player as an io.Writer.
	if n, err := io.Copy(p.Writer(ctx), bytes.NewReader(int16Bytes(tone16(440, 22050, 11025, 1)))); err != nil || n != 22050 {
		t.Fatalf("io.Copy: %d %v", n, err)
	}
	if err := p.WriteFloat32(ctx, []float32{0}); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "S16") {
		t.Fatalf("WriteFloat32 on S16: %v", err)
	}
	if _, err := p.Write(ctx, []byte{1}); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("half a frame: %v", err)
	}
	// A new voice, in band: stereo float at 16 kHz from now on.
	if err := p.SetInputFormat(F32, 2, 16000); err != nil {
		t.Fatal(err)
	}
	if f, ch, r := p.InputFormat(); f != F32 || ch != 2 || r != 16000 {
		t.Fatalf("InputFormat %v %d %d", f, ch, r)
	}
	if err := p.WriteFloat32(ctx, tone32(660, 16000, 8000, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFloat32(ctx, []float32{0, 0, 0}); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "8-byte frames") {
		t.Fatalf("1.5 stereo frames: %v", err)
	}
	if err := p.WriteInt16(ctx, []int16{0, 0}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("WriteInt16 on F32: %v", err)
	}
	// Bad voices: the library's reason, or ours for what C cannot carry.
	for _, c := range []struct {
		f        Format
		ch, rate int
		text     string
	}{{F32, 0, 16000, "channels"}, {S16, 1, 50, "rate"}, {Format(3), 1, 16000, "format 3"}, {S16, -2, 16000, "channels -2"}} {
		if err := p.SetInputFormat(c.f, c.ch, c.rate); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("SetInputFormat(%v, %d, %d): %v", c.f, c.ch, c.rate, err)
		}
	}
	if f, ch, r := p.InputFormat(); f != F32 || ch != 2 || r != 16000 {
		t.Fatalf("a rejected voice changed InputFormat to %v %d %d", f, ch, r)
	}
	time.Sleep(700 * time.Millisecond) // into the second voice
	st, err := p.State()
	if err != nil || !st.Started || st.ContentRate != 16000 || st.DeviceID == "" {
		t.Fatalf("state in the second voice %+v %v", st, err)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := p.Metrics()
	if m.FramesWritten != 11025+8000 || m.FramesPlayed != m.FramesWritten || m.Underruns != 0 {
		t.Fatalf("written %d played %d underruns %d", m.FramesWritten, m.FramesPlayed, m.Underruns)
	}

	// Barge-in.
	if err := p.WriteFloat32(ctx, tone32(330, 16000, 16000, 2)); err != nil {
		t.Fatal(err)
	}
	events := p.Events()
	time.Sleep(300 * time.Millisecond)
	heard, err := p.Flush(10 * time.Millisecond)
	if err != nil || heard <= m.FramesWritten {
		t.Fatalf("flush heard %d (before it %d): %v", heard, m.FramesWritten, err)
	}
	f := nextEvent(t, events, 2*time.Second, Flushed)
	if f.Frame < heard {
		t.Fatalf("fade ended at %d, before %d", f.Frame, heard)
	}
	m, _ = p.Metrics()
	if m.FramesFlushed == 0 || m.FramesWritten != m.FramesPlayed+m.FramesQueued+m.FramesFlushed+m.FramesDropped {
		t.Fatalf("accounting %+v", m)
	}
}

func TestDevices(t *testing.T) {
	def, devs := defaultDevice(t)
	var other *Device
	for i := range devs {
		if !devs[i].Default {
			other = &devs[i]
			break
		}
	}
	if other == nil {
		t.Fatalf("the server needs a second sink for this test; it lists %+v", devs)
	}
	p := newPlayer(t, Config{Rate: 22050})
	events := p.Events()
	if err := p.SetDevice(other.ID); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, 3*time.Second, DeviceChanged)
	ctx := timeout(t, 10*time.Second)
	if err := p.WriteInt16(ctx, tone16(440, 22050, 11025, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := p.Metrics()
	if m.DeviceID != other.ID || m.StreamRate != other.Rate || m.FramesPlayed != 11025 || m.LastRecreateReason != 6 {
		t.Fatalf("on %+v: device %q stream rate %d played %d reason %d", other, m.DeviceID, m.StreamRate, m.FramesPlayed, m.LastRecreateReason)
	}
	// "" follows the default again.
	if err := p.SetDevice(""); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, 3*time.Second, DeviceChanged)
	if m, _ := p.Metrics(); m.DeviceID != def.ID {
		t.Fatalf("back on %q, want the default %q", m.DeviceID, def.ID)
	}
	err := p.SetDevice("no-such-sink")
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "no-such-sink") {
		t.Fatalf("SetDevice(no-such-sink): %v", err)
	}
	if err := p.SetDevice("x\x00y"); !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("SetDevice with a NUL: %v", err)
	}
	// A player opened on a named device plays there.
	q := newPlayer(t, Config{Rate: 16000, Device: other.ID})
	if m, _ := q.Metrics(); m.DeviceID != other.ID {
		t.Fatalf("Config.Device %q opened %q", other.ID, m.DeviceID)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); v != HeaderVersion || strings.Count(v, ".") != 2 {
		t.Fatalf("library %q, header %q", v, HeaderVersion)
	}
	if s := (&Error{Op: "write", Code: -8}).Error(); s != "audioplay: write: the player was destroyed" {
		t.Fatalf("Error() = %q", s)
	}
	if !errors.Is(&Error{Code: -11}, ErrNoOutput) || errors.Is(&Error{Code: -11}, ErrClosed) {
		t.Fatal("sentinels do not follow the code")
	}
}
