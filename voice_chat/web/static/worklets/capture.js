// Microphone capture: AudioContext rate -> 16 kHz mono PCM16 frames for the websocket.
//
// Messages posted to the main thread:
//   {type: "frame", pcm: ArrayBuffer}          one frame of PCM16 LE (frameMs long), transferred
//   {type: "level", rms: number, peak: number}  input level, about every 50 ms
// Messages accepted:
//   {type: "config", targetRate?, frameMs?}
//   {type: "reset"}                              drop partial frame and resampler history

import { StreamResampler } from "./resampler.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.configure(opts.targetRate || 16000, opts.frameMs || 20);
    this.levelEvery = Math.round(sampleRate * 0.05);
    this.levelCount = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.port.onmessage = (e) => {
      const m = e.data || {};
      if (m.type === "config") this.configure(m.targetRate || this.targetRate, m.frameMs || this.frameMs);
      else if (m.type === "reset") {
        this.resampler.reset();
        this.fill = 0;
      }
    };
  }

  configure(targetRate, frameMs) {
    this.targetRate = targetRate;
    this.frameMs = frameMs;
    this.resampler = new StreamResampler(sampleRate, targetRate);
    this.frameLen = Math.round((targetRate * frameMs) / 1000);
    this.frame = new Int16Array(this.frameLen);
    this.fill = 0;
    this.scratch = new Float32Array(1024);
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const n = input[0].length;
    let mono = input[0];
    if (input.length > 1) {
      mono = new Float32Array(n);
      for (let c = 0; c < input.length; c++) {
        const ch = input[c];
        for (let i = 0; i < n; i++) mono[i] += ch[i] / input.length;
      }
    }

    // Level meter (on the unresampled signal).
    for (let i = 0; i < n; i++) {
      const v = mono[i];
      this.sumSq += v * v;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
    }
    this.levelCount += n;
    if (this.levelCount >= this.levelEvery) {
      this.port.postMessage({ type: "level", rms: Math.sqrt(this.sumSq / this.levelCount), peak: this.peak });
      this.levelCount = 0;
      this.sumSq = 0;
      this.peak = 0;
    }

    this.resampler.write(mono);
    for (;;) {
      const got = this.resampler.read(this.scratch, 0, this.scratch.length);
      if (got === 0) break;
      for (let i = 0; i < got; i++) {
        let s = this.scratch[i];
        if (s > 1) s = 1;
        else if (s < -1) s = -1;
        this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.fill === this.frameLen) {
          const out = this.frame.buffer;
          this.port.postMessage({ type: "frame", pcm: out }, [out]);
          this.frame = new Int16Array(this.frameLen);
          this.fill = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);
