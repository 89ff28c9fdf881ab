// Loaded into each profiled tunsec daemon through NODE_OPTIONS=--import=<this file> (Node 20 refuses
// --cpu-prof in NODE_OPTIONS): starts V8's sampling profiler on the main thread through node:inspector
// and writes a .cpuprofile into $TUNSEC_BENCH_CPU_PROF_DIR when the process exits normally
// (SIGTERM → graceful shutdown → exit), like `node --cpu-prof --cpu-prof-dir=DIR` would.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.TUNSEC_BENCH_CPU_PROF_DIR;
if (dir && isMainThread) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 }); // µs, as --cpu-prof's default
  session.post('Profiler.start');
  let written = false;
  process.on('exit', () => {
    if (written) return;
    written = true;
    // On the main thread the inspector answers synchronously: the callback runs before exit completes.
    session.post('Profiler.stop', (err, res) => {
      if (!err && res?.profile) writeFileSync(join(dir, `CPU.${Date.now()}.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
