/**
 * `npm run docs`: rewrites the generated tables of README.md (limits, configuration) in place.
 * test/readme.test.ts fails until this has been run after a change to limits.ts or CONFIG_DOC.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TABLES, type TableName, writeSection } from './readme-tables.js';

const file = fileURLToPath(new URL('../README.md', import.meta.url));
const before = readFileSync(file, 'utf8');
let text = before;
for (const name of Object.keys(TABLES) as TableName[]) {
  text = writeSection(text, name, TABLES[name]());
}
if (text === before) {
  console.log('README.md: tables up to date');
} else {
  writeFileSync(file, text);
  console.log('README.md: tables rewritten');
}
