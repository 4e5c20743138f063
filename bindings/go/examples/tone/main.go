// Command tone plays a sine tone through audioplay and checks that all of it was heard.
//
//	go run ./examples/tone -seconds 1 -freq 440
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	audioplay "github.com/audioplay/audioplay/bindings/go"
)

func main() {
	seconds := flag.Float64("seconds", 1, "length of the tone")
	freq := flag.Float64("freq", 440, "frequency in Hz")
	rate := flag.Int("rate", 22050, "content sample rate")
	device := flag.String("device", "", "output device id (default: the system default)")
	flag.Parse()
	if err := run(*seconds, *freq, *rate, *device); err != nil {
		fmt.Fprintln(os.Stderr, "tone:", err)
		os.Exit(1)
	}
}

func run(seconds, freq float64, rate int, device string) error {
	if seconds <= 0 || seconds > 600 || math.IsNaN(seconds) {
		return fmt.Errorf("-seconds %v is not in (0, 600]", seconds)
	}
	p, err := audioplay.New(audioplay.Config{Rate: rate, Channels: 1, Format: audioplay.S16, Device: device})
	if err != nil {
		return err
	}
	defer p.Close()
	frames := int(seconds * float64(rate))
	pcm := make([]int16, frames)
	for i := range pcm {
		pcm[i] = int16(10000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds*float64(time.Second))+10*time.Second)
	defer cancel()
	events := p.Events()
	if err := p.WriteInt16(ctx, pcm); err != nil {
		return err
	}
	if err := p.EndUtterance(); err != nil {
		return err
	}
	if err := p.Drain(ctx); err != nil {
		return err
	}
	m, err := p.Metrics()
	if err != nil {
		return err
	}
	// The utterance's end arrives on the events channel once it was heard.
	var end audioplay.Event
	for end.Kind != audioplay.UtteranceEnd {
		select {
		case end = <-events:
		case <-time.After(2 * time.Second):
			return fmt.Errorf("no utterance_end event within 2 s of the drain")
		}
	}
	fmt.Printf("audioplay %s: played %d of %d frames on %s (%d Hz stream), %d underruns, heard the end at %v\n",
		audioplay.Version(), m.FramesPlayed, frames, m.DeviceID, m.StreamRate, m.Underruns, end.Heard.Round(time.Millisecond))
	if m.FramesPlayed != uint64(frames) {
		return fmt.Errorf("played %d frames of %d", m.FramesPlayed, frames)
	}
	return nil
}
