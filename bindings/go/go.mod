module audioplay

go 1.19
