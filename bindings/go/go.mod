module github.com/audioplay/audioplay/bindings/go

go 1.19
