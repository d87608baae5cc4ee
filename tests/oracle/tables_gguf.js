// tables_gguf.js - what an independent GGUF reader (npm @huggingface/gguf,
// pinned in package-lock.json) finds in a GGUF model file gpt2in wrote:
// version, counts, the scalar and string key-values with their types, each
// tensor's name, dims (as stored: fastest-varying first), ggml type and
// offset, and where the data starts. Prints one JSON object.
// usage: node tests/oracle/tables_gguf.js FILE.gguf
"use strict";
const path = require("path");
const { gguf } = require("@huggingface/gguf");

(async () => {
  const file = path.resolve(process.argv[2]);
  const r = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const meta = {};
  for (const [k, v] of Object.entries(r.typedMetadata)) {
    if (Array.isArray(v.value)) meta[k] = { type: v.type, length: v.value.length };
    else meta[k] = { type: v.type, value: typeof v.value === "bigint" ? v.value.toString() : v.value };
  }
  const out = {
    littleEndian: r.littleEndian,
    tensorDataOffset: r.tensorDataOffset.toString(),
    meta,
    tensors: r.tensorInfos.map((t) => ({
      name: t.name,
      shape: t.shape.map((d) => d.toString()),
      dtype: t.dtype,
      offset: t.offset.toString(),
    })),
  };
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => {
  console.error("tables_gguf.js: " + (e && e.message ? e.message : e));
  process.exit(1);
});
