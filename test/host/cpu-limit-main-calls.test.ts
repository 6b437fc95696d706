// Issue 12 item 3, the database on the test's thread (`--database-threads main`): runaway reducers,
// views and procedures (test/host/cpu-limit-cases.ts).
import { cpuLimitCases } from './cpu-limit-cases.js';

cpuLimitCases('main', ['reducer', 'view', 'procedure']);
