// cmd_shard_json.cpp - the fast path of gpt2in shard's JSON Lines: one
// string field of a line, with simdjson (Debian's libsimdjson). The line is
// fully parsed and validated (DOM parser, not on-demand, so that a fault
// anywhere in the line is seen). Anything but a good line - malformed JSON,
// not an object, the field missing or not a string - is left to jansson,
// which decides and says what is wrong (cmd_shard_unit.c). Built as
// gpt2in-shard-json.so, which gpt2in-shard loads for JSON Lines only
// (cmd_shard_jsonlib.c); its one exported symbol is shard_json_lib_get.
#include <simdjson.h>

#include <cstring>
#include <new>

#include "shard_json.h"

struct shard_json {
    simdjson::dom::parser parser;
};

static shard_json *make(void) { return new (std::nothrow) shard_json(); }

static void release(shard_json *j) { delete j; }

static int field(shard_json *j, const char *line, size_t n, const char *field, const char **s, size_t *len) {
    simdjson::dom::element doc;
    simdjson::error_code e = j->parser.parse(line, n, false).get(doc);
    if (e) return e == simdjson::MEMALLOC ? SHARD_JSON_NOMEM : SHARD_JSON_BAD;
    simdjson::dom::object obj;
    if (doc.get(obj)) return SHARD_JSON_BAD;
    // The last of duplicate keys counts, as in jansson and Python.
    simdjson::dom::element value;
    bool found = false;
    size_t flen = strlen(field);
    for (simdjson::dom::key_value_pair kv : obj)
        if (kv.key.size() == flen && !memcmp(kv.key.data(), field, flen)) {
            value = kv.value;
            found = true;
        }
    std::string_view v;
    if (!found || value.get(v)) return SHARD_JSON_BAD;
    *s = v.data();
    *len = v.size();
    return SHARD_JSON_OK;
}

static const shard_json_lib lib = {SHARD_JSON_ABI, simdjson::SIMDJSON_PADDING, make, release, field};

extern "C" __attribute__((visibility("default"))) const shard_json_lib *shard_json_lib_get(void) { return &lib; }
