/**
 * `npm run docs`: rewrites the generated tables (configuration, limits) of docs/configuration.md
 * in place. test/readme.test.ts fails until this has been run after a change to limits.ts or
 * CONFIG_DOC.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TABLES, TABLES_FILE, type TableName, writeSection } from './readme-tables.js';

const file = fileURLToPath(new URL(`../${TABLES_FILE}`, import.meta.url));
const before = readFileSync(file, 'utf8');
let text = before;
for (const name of Object.keys(TABLES) as TableName[]) {
  text = writeSection(text, name, TABLES[name]());
}
if (text === before) {
  console.log(`${TABLES_FILE}: tables up to date`);
} else {
  writeFileSync(file, text);
  console.log(`${TABLES_FILE}: tables rewritten`);
}
