//! The shapes audio travels in: the format of the bytes in the ring (content) and of the
//! stream the callback fills, and the scratch a chunk of one needs for the other.

/// Output frames rendered per inner step at most. Devices asking for more are served in
/// several steps, never with silence.
pub const CHUNK_FRAMES: usize = 1024;

/// What the render path needs to know about the stream it feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputShape {
    pub rate: u32,
    pub channels: usize,
}

/// Content description: the format of the bytes in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    pub s16: bool,
    pub channels: usize,
    pub rate: u32,
}

impl InputShape {
    pub fn frame_bytes(&self) -> usize {
        self.channels * if self.s16 { 2 } else { 4 }
    }
}

/// Decode scratch (input frames) for one chunk of output at these rates.
pub fn scratch_frames(input: InputShape, output: OutputShape) -> usize {
    let in_per_out = (input.rate as usize).div_ceil(output.rate.max(1) as usize);
    CHUNK_FRAMES * in_per_out.max(1) + in_per_out + 4
}
