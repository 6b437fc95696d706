// Issue 12 item 3, the database in its own worker thread (`--database-threads worker`): runaway reducers,
// views and procedures (test/host/cpu-limit-cases.ts).
import { cpuLimitCases } from './cpu-limit-cases.js';

cpuLimitCases('worker', ['reducer', 'view', 'procedure']);
