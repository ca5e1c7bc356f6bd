// Streaming band-limited resampler shared by the capture and playback worklets.
//
// Each output sample is a windowed-sinc (Blackman) interpolation of the input at a
// fractional position, so one class covers both decimation (48 kHz mic -> 16 kHz,
// with the cutoff lowered below the new Nyquist: the anti-alias filter) and
// interpolation (22.05 kHz voice -> 48 kHz AudioContext). The kernel is tabulated
// once (linear interpolation between table points) to keep the inner loop cheap.

const ZERO_CROSSINGS = 8; // each side of the kernel centre
const TABLE_STEPS = 256; // table points per input sample

export class StreamResampler {
  /**
   * @param {number} inRate input sample rate (Hz)
   * @param {number} outRate output sample rate (Hz)
   */
  constructor(inRate, outRate) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate; // input samples advanced per output sample
    this.bypass = Math.abs(inRate - outRate) < 1e-6;
    // Cutoff in cycles per input sample: just under the lower of the two Nyquists.
    const fc = 0.5 * Math.min(1, outRate / inRate) * 0.92;
    this.radius = Math.ceil(ZERO_CROSSINGS / (2 * fc)); // kernel half width, input samples
    const n = this.radius * TABLE_STEPS + 2;
    this.table = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = i / TABLE_STEPS;
      if (d >= this.radius) break;
      const x = 2 * fc * d;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = d / this.radius; // 0..1 -> Blackman half window
      const win = 0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w);
      this.table[i] = 2 * fc * sinc * win;
    }
    this.buf = new Float32Array(4096);
    this.reset();
  }

  /** Forget all buffered input (the next output starts at input position 0 again). */
  reset() {
    // Start with `radius` zeros of history so the first output is centred on input 0.
    this.buf.fill(0);
    this.len = this.bypass ? 0 : this.radius;
    this.t = this.bypass ? 0 : this.radius; // position of the next output, in buf units
    this.dropped = 0; // input samples discarded from the front of buf so far
    this.written = 0; // input samples written in total
  }

  /** Append input samples (Float32Array or array of numbers in -1..1). */
  write(samples) {
    const need = this.len + samples.length;
    if (need > this.buf.length) {
      let size = this.buf.length;
      while (size < need) size *= 2;
      const nb = new Float32Array(size);
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(samples, this.len);
    this.len += samples.length;
    this.written += samples.length;
  }

  /** Append `count` zeros (used to flush the kernel's look-ahead at the end of a stream). */
  writeSilence(count) {
    this.write(new Float32Array(count));
  }

  /** How many output samples can be produced from what is buffered now. */
  available() {
    if (this.bypass) return this.len - this.t;
    // Need buf[floor(t) + radius] to exist.
    const last = this.len - 1 - this.radius; // greatest usable floor(t)
    if (last < this.t) return 0;
    return Math.floor((last - this.t) / this.step) + 1;
  }

  /** Input position (in input samples since the start) of the next output sample. */
  position() {
    return this.dropped + this.t - (this.bypass ? 0 : this.radius);
  }

  /** Input samples buffered but not yet consumed. */
  buffered() {
    return Math.max(0, this.len - this.t - (this.bypass ? 0 : this.radius));
  }

  /**
   * Produce up to `n` output samples into `out` starting at `offset`.
   * @returns {number} samples produced
   */
  read(out, offset, n) {
    const avail = this.available();
    const count = Math.min(n, avail);
    if (count <= 0) return 0;
    if (this.bypass) {
      out.set(this.buf.subarray(this.t, this.t + count), offset);
      this.t += count;
    } else {
      const { buf, table, radius, step } = this;
      let t = this.t;
      for (let j = 0; j < count; j++) {
        const i0 = Math.floor(t);
        const frac = t - i0;
        let acc = 0;
        for (let k = 1 - radius; k <= radius; k++) {
          let d = k - frac;
          if (d < 0) d = -d;
          const p = d * TABLE_STEPS;
          const pi = p | 0;
          const h = table[pi] + (table[pi + 1] - table[pi]) * (p - pi);
          acc += buf[i0 + k] * h;
        }
        out[offset + j] = acc;
        t += step;
      }
      this.t = t;
    }
    this.compact();
    return count;
  }

  compact() {
    const keepFrom = this.bypass ? Math.floor(this.t) : Math.floor(this.t) - this.radius + 1;
    if (keepFrom > 2048 || (keepFrom > 0 && keepFrom >= this.len / 2)) {
      this.buf.copyWithin(0, keepFrom, this.len);
      this.len -= keepFrom;
      this.t -= keepFrom;
      this.dropped += keepFrom;
    }
  }
}
