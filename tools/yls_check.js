// Validate YAML files against archcalc's JSON Schema with yaml-language-server itself, the way an
// editor does (tests/test_schema.py validates with Python's jsonschema; this checks that the
// schema's patterns and draft-07 keywords mean the same to the language server).
//
//   npm install --prefix /tmp/yls yaml-language-server vscode-languageserver-textdocument
//   NODE_PATH=/tmp/yls/node_modules node tools/yls_check.js archcalc/spec.schema.json specs/*.yaml specs/blocks/*.yaml
//
// Prints each file's diagnostics and the number of files with any; exits 1 if there is one.
const fs = require('fs');
const path = require('path');
const { getLanguageService } = require('yaml-language-server/lib/umd/languageservice/yamlLanguageService');
const { TextDocument } = require('vscode-languageserver-textdocument');
const { URI } = require('vscode-uri');

const [schemaFile, ...files] = process.argv.slice(2);
const ls = getLanguageService({
  schemaRequestService: (uri) => Promise.resolve(fs.readFileSync(URI.parse(uri).fsPath, 'utf8')),
  workspaceContext: { resolveRelativePath: (rel, res) => new URL(rel, res).toString() },
});
// yaml-language-server's default YAML version, 1.2; under 1.1 it reads `n:` (chunk's argument) as false
ls.configure({ validate: true, yamlVersion: '1.2',
  schemas: [{ uri: URI.file(path.resolve(schemaFile)).toString(), fileMatch: ['*.yaml', '*.yml'] }] });

(async () => {
  let bad = 0;
  for (const f of files) {
    const doc = TextDocument.create(URI.file(path.resolve(f)).toString(), 'yaml', 1, fs.readFileSync(f, 'utf8'));
    const diagnostics = await ls.doValidation(doc, false);
    if (diagnostics.length) {
      bad++;
      console.log(f);
      for (const d of diagnostics) console.log(`  ${d.range.start.line + 1}: ${d.message}`);
    }
  }
  console.log(`${bad} of ${files.length} files with diagnostics`);
  process.exit(bad ? 1 : 0);
})();
