// npm puts a package's LICENSE in its tarball only from the package's own folder: `npm pack` of a
// workspace package copies the repository's LICENSE there first (prepack) and removes it after
// (postpack), so the text lives once in the repository and in every tarball.
import fs from 'node:fs';

const root = new URL('../LICENSE', import.meta.url);
const here = `${process.cwd()}/LICENSE`;
if (process.argv[2] === 'copy') fs.copyFileSync(root, here);
else fs.rmSync(here, { force: true });
