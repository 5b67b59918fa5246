// The proto lives at the repository root (proto/), where grpcurl and other languages find it;
// @muster/api ships a copy so the server and the SDK load the same file from their dependency.
import { cpSync } from 'node:fs';

cpSync(new URL('../proto', import.meta.url), new URL('../packages/api/dist/proto', import.meta.url), {
  recursive: true,
});
