'use strict';
// Preloaded by bench/alloc.mjs into the app: V8's sampling heap profiler, counting objects the GC
// has already collected too (so the profile is what was allocated, not what is still alive). On
// SIGUSR2 it writes the samples so far to $ALLOC_PROFILE_OUT and starts again from zero.
const fs = require('node:fs');
const inspector = require('node:inspector');

const session = new inspector.Session();
session.connect();
const start = () =>
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.ALLOC_SAMPLING_INTERVAL || 4096),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
session.post('HeapProfiler.enable', start);
process.on('SIGUSR2', () => {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (!err) {
      // Whole or not at all: the bench reads the file as soon as it is there.
      fs.writeFileSync(`${process.env.ALLOC_PROFILE_OUT}.part`, JSON.stringify(result.profile));
      fs.renameSync(`${process.env.ALLOC_PROFILE_OUT}.part`, process.env.ALLOC_PROFILE_OUT);
    }
    start();
  });
});
