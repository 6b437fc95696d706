#!/usr/bin/env node
// The `spacetime` command. The code lives in dist/ (built by `npm run build`, which `npm install` runs).
import('../dist/cli/main.js').then((cli) => cli.main(process.argv.slice(2)));
