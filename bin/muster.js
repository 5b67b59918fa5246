#!/usr/bin/env node
// The repository's own `muster` command: runs the built CLI (npm install builds it).
import '../packages/server/dist/src/cli/main.js';
