// Gapless playback of streamed PCM16 replies with a small jitter buffer.
//
// Each reply is a "segment" with its own source rate, resampled to the AudioContext
// rate here. Segments play one after the other.
//
// Messages accepted:
//   {type: "start", id, rate}          a reply's audio begins at `rate` Hz
//   {type: "chunk", id, pcm}           PCM16 LE ArrayBuffer for reply `id`
//   {type: "end", id}                  no more audio for reply `id`
//   {type: "flush", ids?, seq}         stop now, drop everything buffered (or only `ids`)
//   {type: "config", prebufferMs?, rebufferMs?}
// Messages posted:
//   {type: "playing", id}              first sample of `id` reached the output
//   {type: "progress", id, playedMs, bufferedMs, rms}   about every 40 ms while playing
//   {type: "underrun", id}             ran dry before the end of `id` (waiting for more)
//   {type: "drained", id, playedMs}    `id` played to its end
//   {type: "flushed", segments: [{id, playedMs}], seq, flushedAt}   flushedAt: audio clock (s)

import { StreamResampler } from "./resampler.js";

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.prebufferMs = opts.prebufferMs || 80;
    this.rebufferMs = opts.rebufferMs || 40;
    this.queue = [];
    this.progressEvery = Math.round(sampleRate * 0.04);
    this.sinceProgress = 0;
    this.sumSq = 0;
    this.sumN = 0;
    this.port.onmessage = (e) => this.onMessage(e.data || {});
  }

  find(id) {
    for (const s of this.queue) if (s.id === id) return s;
    return null;
  }

  onMessage(m) {
    switch (m.type) {
      case "start": {
        if (this.find(m.id)) return;
        this.queue.push({
          id: m.id,
          rate: m.rate,
          rs: new StreamResampler(m.rate, sampleRate),
          real: 0, // real (non-padding) source samples received
          ended: false,
          started: false,
          starved: false,
        });
        break;
      }
      case "chunk": {
        const s = this.find(m.id);
        if (!s || s.ended) return;
        const pcm = new Int16Array(m.pcm);
        const f = new Float32Array(pcm.length);
        for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
        s.rs.write(f);
        s.real += pcm.length;
        break;
      }
      case "end": {
        const s = this.find(m.id);
        if (!s || s.ended) return;
        s.ended = true;
        s.rs.writeSilence(s.rs.radius + 2); // let the kernel's look-ahead reach the last sample
        break;
      }
      case "flush": {
        const hit = (s) => !m.ids || m.ids.includes(s.id);
        const segments = this.queue.filter(hit).map((s) => ({ id: s.id, playedMs: this.playedMs(s) }));
        this.queue = this.queue.filter((s) => !hit(s));
        // currentTime here is the start of the next render quantum: the first silent sample.
        this.port.postMessage({ type: "flushed", segments, seq: m.seq, flushedAt: currentTime });
        break;
      }
      case "config":
        if (m.prebufferMs) this.prebufferMs = m.prebufferMs;
        if (m.rebufferMs) this.rebufferMs = m.rebufferMs;
        break;
    }
  }

  playedMs(s) {
    if (!s.started) return 0;
    const pos = Math.max(0, Math.min(s.rs.position(), s.real));
    return (pos / s.rate) * 1000;
  }

  bufferedMs(s) {
    return (Math.max(0, s.real - s.rs.position()) / s.rate) * 1000;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    const n = ch0.length;
    let filled = 0;
    let current = null;

    while (filled < n && this.queue.length) {
      const s = this.queue[0];
      if (!s.started || s.starved) {
        const need = s.started ? this.rebufferMs : this.prebufferMs;
        if (s.ended || this.bufferedMs(s) >= need) {
          if (!s.started) this.port.postMessage({ type: "playing", id: s.id });
          s.started = true;
          s.starved = false;
        } else break;
      }
      current = s;
      const got = s.rs.read(ch0, filled, n - filled);
      filled += got;
      if (filled < n) {
        if (s.ended) {
          this.port.postMessage({ type: "drained", id: s.id, playedMs: (s.real / s.rate) * 1000 });
          this.queue.shift();
          continue;
        }
        s.starved = true;
        this.port.postMessage({ type: "underrun", id: s.id });
        break;
      }
    }
    for (let i = filled; i < n; i++) ch0[i] = 0;
    for (let i = 0; i < filled; i++) this.sumSq += ch0[i] * ch0[i];
    this.sumN += n;
    for (let c = 1; c < out.length; c++) out[c].set(ch0);

    this.sinceProgress += n;
    if (this.sinceProgress >= this.progressEvery) {
      const s = current || this.queue[0];
      if (s) {
        this.port.postMessage({
          type: "progress",
          id: s.id,
          playedMs: this.playedMs(s),
          bufferedMs: this.bufferedMs(s),
          rms: Math.sqrt(this.sumSq / Math.max(1, this.sumN)),
        });
      }
      this.sinceProgress = 0;
      this.sumSq = 0;
      this.sumN = 0;
    }
    return true;
  }
}

registerProcessor("playback-processor", PlaybackProcessor);
