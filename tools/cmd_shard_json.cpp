// cmd_shard_json.cpp - the fast path of gpt2in shard's JSON Lines: one
// string field of a line, with simdjson (Debian's libsimdjson). The line is
// fully parsed and validated (DOM parser, not on-demand, so that a fault
// anywhere in the line is seen). Anything but a good line - malformed JSON,
// not an object, the field missing or not a string - is left to jansson,
// which decides and says what is wrong (cmd_shard_unit.c).
#include <simdjson.h>

#include <cstring>
#include <new>

#include "shard_json.h"

struct shard_json {
    simdjson::dom::parser parser;
};

shard_json *shard_json_new(void) { return new (std::nothrow) shard_json(); }

void shard_json_free(shard_json *j) { delete j; }

size_t shard_json_padding(void) { return simdjson::SIMDJSON_PADDING; }

int shard_json_field(shard_json *j, const char *line, size_t n, const char *field, const char **s,
                                size_t *len) {
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
