package audioplay

// Runs on the PulseAudio harness scripts/test.sh starts, against the installed library.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

func tone(freq float64, rate, frames int) []byte {
	var b bytes.Buffer
	for i := 0; i < frames; i++ {
		binary.Write(&b, binary.LittleEndian, int16(16000*math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return b.Bytes()
}

func TestPlaysReadsMetricsPollsAndFlushes(t *testing.T) {
	p, err := New(Config{Rate: 22050, Channels: 1, Format: S16})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Mark(9); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Write(tone(440, 22050, 11025)); err != nil || n != 22050 {
		t.Fatalf("write: %d %v", n, err)
	}
	if err := p.Drain(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := p.Metrics()
	if err != nil || m.FramesPlayed != 11025 || m.Underruns != 0 || m.Device != "s48" {
		t.Fatalf("metrics %+v %v", m, err)
	}
	var got []string
	for {
		e, ok, err := p.PollEvent()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, e.Kind)
	}
	if len(got) < 2 || got[0] != "utterance_start" || got[1] != "marker" {
		t.Fatalf("events %v", got)
	}
	if _, err := p.Write(tone(440, 22050, 44100)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if heard, err := p.Flush(10 * time.Millisecond); err != nil || heard == 0 {
		t.Fatalf("flush %d %v", heard, err)
	}
	time.Sleep(200 * time.Millisecond)
	m, _ = p.Metrics()
	if m.FramesFlushed == 0 || m.FramesWritten != m.FramesPlayed+m.FramesQueued+m.FramesFlushed+m.FramesDropped {
		t.Fatalf("accounting %+v", m)
	}
}

func TestErrors(t *testing.T) {
	_, err := New(Config{Rate: 5})
	var e *Error
	if !errors.As(err, &e) || e.Status != -2 {
		t.Fatalf("want invalid argument, got %v", err)
	}
	p, err := New(Config{Rate: 22050})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte{1}); err == nil {
		t.Fatal("half a frame accepted")
	}
	if Version() == "" {
		t.Fatal("no version")
	}
}
