/* long.c - pieces too long for the short loop, in linear time: the last
 * token at each place (with the longest-match automaton and one pair
 * check), shared by threads; and the cut of a piece where no token joins
 * two bytes. */
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "merge.h"

/* Pair checks. Two facts about BPE (github's rust-gems `bpe` crate uses
 * them too) make the long-piece encoder exact:
 *   - a token sequence is the BPE encoding of its bytes exactly when every
 *     adjacent pair (a, b) is, i.e. encode(bytes(a) bytes(b)) == [a, b];
 *   - the encoding of a text is unique. */

/* The answers of pair checks, by pair: long pieces of a few bytes (runs
 * of digits, of one character) check the same pairs over and over. An
 * entry is a << 32 | b, with bit 63 set when compatible; ids are below
 * 2^21, so no entry is PAIR_MEMO_FREE. */
#define PAIR_MEMO_MAX 16384
#define PAIR_MEMO_FREE UINT64_MAX
#define PAIR_OK (1ull << 63)

typedef struct {
    size_t mask;
    uint64_t e[];
} pair_memo;

/* A memo of about n entries (at most PAIR_MEMO_MAX), or NULL when out of
 * memory (pair checks then go without). */
static pair_memo *pair_memo_new(size_t n) {
    size_t size = 256;
    while (size < n && size < PAIR_MEMO_MAX) size *= 2;
    pair_memo *m = gpt2in_malloc(sizeof *m + size * sizeof *m->e);
    if (!m) return NULL;
    m->mask = size - 1;
    memset(m->e, 0xFF, size * sizeof *m->e);
    return m;
}

/* The token of bytes s[0..len), 1 <= len <= BPE_SHORT_MAX, from the small
 * tables, or BPE_EMPTY. */
static inline uint32_t short_find(const struct bpe *v, const uint8_t *s, size_t len) {
    switch (len) {
    case 1: return v->byte_tok[s[0]];
    case 2: return v->byte_pairs[s[0] << 8 | s[1]];
    case 3: return bpe_short_token(v, s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16, 3);
    default:
        return bpe_short_token(v, s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24,
                               4);
    }
}

/* The token of bytes s[0..len), or BPE_EMPTY: also the merge of any two
 * parts whose bytes these are. */
static inline uint32_t find_at(const struct bpe *v, const uint8_t *s, size_t len) {
    if (len <= BPE_SHORT_MAX) return short_find(v, s, len);
    return len <= v->max_token_len ? bpe_find_token(v, s, len) : BPE_EMPTY;
}

/* Is [a, b] the encoding of bytes(a) bytes(b), given that [a] is the
 * encoding of bytes(a)? (rust-gems' is_valid_token_pair, on the bytes of
 * the text instead of a pair table.) a ends and b starts at p + pos.
 *
 * Fast path, when the merge processes of a and b are monotone (ranks never
 * decrease; true of nearly every GPT-2 token, recorded in v->split): before
 * any merge crosses the boundary, the process on a b interleaves a's and b's
 * own processes in rank order, left first on ties. The last part of the left
 * side walks down a's right spine (a, right(a), right(right(a)), ...), the
 * first part of the right side down b's left spine. Walking back in time,
 * the state (L, R) lasted until the later of the merges that made L or R; the
 * crossing pair (L, R) would have merged first iff its rank is below that
 * merge's rank (L's case) or at most it (R's case: the crossing pair is left
 * of it and wins ties); at the end, iff it is a token at all. A crossing
 * pair is found by its bytes in the text (find_at), not in the pair table.
 * Returns 0 when the path does not apply. */
int bpe_compatible_fast(const struct bpe *v, const uint8_t *p, size_t pos, uint32_t a, uint32_t b,
                           int *ok) {
    uint32_t L = a, R = b;
    size_t ll = token_len(v, a), lr = token_len(v, b);
    uint64_t limit = UINT64_MAX;
    if (lr > 1 && v->split[2 * b] == BPE_EMPTY) return 0;
    if (ll > 1 && v->split[2 * a] == BPE_EMPTY) return 0;
    for (;;) {
        uint32_t c = find_at(v, p + pos - ll, ll + lr);
        if (c != BPE_EMPTY && c < limit) {
            *ok = 0;
            return 1;
        }
        int64_t fl = ll > 1 ? (int64_t)L : -1, fr = lr > 1 ? (int64_t)R : -1;
        if (fl < 0 && fr < 0) {
            *ok = 1;
            return 1;
        }
        if (fl > fr) {
            limit = (uint64_t)fl;
            L = v->split[2 * L + 1];
            ll = token_len(v, L);
        } else {
            limit = (uint64_t)fr + 1;
            R = v->split[2 * R];
            lr = token_len(v, R);
        }
    }
}


/* Is [a, b] the encoding of bytes(a) bytes(b)? a ends and b starts at
 * p + pos; each is its own encoding. Asked of the memo first, then
 * bpe_compatible_fast where it applies, else by re-encoding the two tokens'
 * bytes (vocabularies with non-monotone tokens). */
static int compatible(const struct bpe *v, pair_memo *memo, const uint8_t *p, size_t pos, uint32_t a,
                      uint32_t b) {
    uint64_t key = (uint64_t)a << 32 | b, *slot = NULL;
    if (memo) {
        slot = &memo->e[bpe_hash_pair(key) & memo->mask];
        if ((*slot & ~PAIR_OK) == key) return *slot >> 63 != 0;
    }
    int ok;
    if (!bpe_compatible_fast(v, p, pos, a, b, &ok)) {
        uint8_t buf[SHORT_PIECE];
        uint32_t tok[SHORT_PIECE];
        size_t la = token_len(v, a), lb = token_len(v, b);
        /* Too long to re-encode: "no", which at worst leaves a place
         * without a token, and the piece goes to the heap. */
        if (la + lb > SHORT_PIECE) return 0;
        memcpy(buf, v->tok_bytes + v->tok_off[a], la);
        memcpy(buf + la, v->tok_bytes + v->tok_off[b], lb);
        size_t m = bpe_merge_short(v, buf, la + lb, tok);
        ok = m == 2 && tok[0] == a && tok[1] == b;
    }
    if (slot) *slot = key | (ok ? PAIR_OK : 0);
    return ok;
}


/* ---- long pieces ------------------------------------------------------------------ */

/* Long pieces, in linear time: the last-token-at-each-place method (as in
 * rust-gems' `bpe` crate, written anew). By the two facts above, the
 * encoding of p[0..i) ends with the one token t ending at i whose pair
 * with the last token of the encoding of p[0..i - len(t)) is compatible:
 * that one extends a valid sequence, and the encoding is unique. So
 * last[i] (a token id) follows from last[] before i with no search and no
 * going back, and the tokens are read back from last[n]. The tokens that
 * end at i come from the longest-match automaton (bpe_ac_next), longest
 * first; each place costs a step of the automaton and a few pair checks,
 * whatever the text. */

/* last[i] for i in (from, to], the last token of the encoding of
 * p[origin..i), given last[] at the places before from (origin <= from):
 * s is the automaton's node after p[..from), fed from no later than
 * origin or from - max_token_len. A token that starts at origin needs no
 * check: the automaton only names tokens that are their own encoding.
 * agree_from: when not 0, stops at the first place e such that the
 * max_token_len places up to e all kept the value they had and lie past
 * agree_from (then every later place keeps its value too: last[i] depends
 * only on the max_token_len places before it); returns e, or to. Returns
 * 0 when a place has no token (a vocabulary whose tokens are too long for
 * the pair check's re-encoding), for the caller's fallback. */
#define GUESS_SLOTS 256
#define STEP_SLOTS 1024

static size_t last_tokens(const struct bpe *v, const uint8_t *p, size_t origin, size_t from, size_t to,
                          uint32_t s, uint32_t *last, pair_memo *memo, size_t agree_from) {
    const bpe_ac_node *nodes = v->ac_nodes;
    size_t agree = 0, window = v->max_token_len;
    /* Exactly one token fits at a place, so the order of the tries is
     * free: the one that fit last time at the same node after the same
     * token is tried first. In runs of one or two characters it nearly
     * always fits, where longest first tries a dozen before it. */
    uint64_t guess_key[GUESS_SLOTS];
    uint32_t guess_node[GUESS_SLOTS];
    memset(guess_key, 0xFF, sizeof guess_key);
    /* The automaton's steps taken so far (node << 8 | byte -> node): a
     * step down the fail links costs a look-up per link, and long pieces
     * repeat their steps. */
    uint32_t step_key[STEP_SLOTS], step_to[STEP_SLOTS];
    memset(step_key, 0xFF, sizeof step_key);
    for (size_t i = from; i < to; i++) {
        uint32_t sk = s << 8 | p[i];
        size_t ss = (size_t)((sk * 2654435761u) >> 22) & (STEP_SLOTS - 1);
        if (step_key[ss] == sk) {
            s = step_to[ss];
        } else {
            s = bpe_ac_next(v, s, p[i]);
            step_key[ss] = sk;
            step_to[ss] = s;
        }
        size_t end = i + 1;
        uint32_t before = i > origin ? last[i] : BPE_EMPTY;
        uint64_t key = (uint64_t)s << 32 | before;
        size_t slot = (size_t)(bpe_hash_pair(key) & (GUESS_SLOTS - 1));
        uint32_t u = guess_key[slot] == key ? guess_node[slot] : 0, t = BPE_EMPTY;
        if (u) {
            size_t start = end - nodes[u].depth;
            if (start >= origin && (start == origin || compatible(v, memo, p, start, last[start], nodes[u].tok)))
                t = nodes[u].tok;
        }
        if (t == BPE_EMPTY) {
            uint32_t tried = u;
            for (u = nodes[s].tok != BPE_EMPTY ? s : nodes[s].dict; u; u = nodes[u].dict) {
                size_t start = end - nodes[u].depth;
                if (start < origin || u == tried) continue;
                if (start == origin || compatible(v, memo, p, start, last[start], nodes[u].tok)) {
                    t = nodes[u].tok;
                    break;
                }
            }
            if (t == BPE_EMPTY) return 0;
            guess_key[slot] = key;
            guess_node[slot] = u;
        }
        if (agree_from) {
            agree = last[end] == t && end > agree_from ? agree + 1 : 0;
            last[end] = t;
            if (agree >= window) return end;
        } else {
            last[end] = t;
        }
    }
    return to;
}

/* The automaton's node after p[from - max_token_len .. from) (or from 0). */
static uint32_t node_before(const struct bpe *v, const uint8_t *p, size_t from) {
    uint32_t s = 0;
    for (size_t i = from > v->max_token_len ? from - v->max_token_len : 0; i < from; i++) s = bpe_ac_next(v, s, p[i]);
    return s;
}

/* A stretch this long is shared by the threads: each takes a part and
 * finds its places' last tokens as if the stretch began there; then, left
 * to right, each part's first places are found again from the true places
 * before them, until max_token_len in a row come out as they were (the
 * encodings met; usually within a few tokens). */
#define PART_LONG_MIN (256u << 10)

typedef struct {
    const struct bpe *v;
    const uint8_t *p;
    uint32_t *last;
    size_t from, to;
    int ok;
} last_part;

static void long_part_run(void *ctx, int k, cache_slot *unused) {
    (void)unused;
    last_part *j = (last_part *)ctx + k;
    pair_memo *memo = pair_memo_new(j->to - j->from);
    j->ok = j->from == j->to || last_tokens(j->v, j->p, j->from, j->from, j->to, 0, j->last, memo, 0) != 0;
    free(memo);
}

/* How many parts (and threads) a stretch of n bytes is encoded in. */
static int piece_parts(const out_t *o, size_t n) {
    size_t most = n / PART_LONG_MIN;
    if (most > MAX_PARTS) most = MAX_PARTS;
    return o->threads > 1 && most > 1 ? (int)(most < (size_t)o->threads ? most : (size_t)o->threads) : 1;
}

/* last[1..n] of p[0..n) on `parts` threads. 0 when a place has no token. */
static int last_all(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *last, int parts) {
    last_part jobs[MAX_PARTS];
    if (parts < 1) parts = 1;
    if (parts > MAX_PARTS) parts = MAX_PARTS;
    for (int k = 0; k < parts; k++)
        jobs[k] = (last_part){v, p, last, n * (size_t)k / (size_t)parts, n * (size_t)(k + 1) / (size_t)parts, 0};
    job_queue q = {long_part_run, jobs, parts, 0, 0};
    bpe_queue_run(&q, parts);
    for (int k = 0; k < parts; k++)
        if (!jobs[k].ok) return 0;
    /* Part k's places are found again from its start, with the true
     * places before it, until they meet its own (then the rest of it is
     * true too) or it ends (then all of it was found again). Either way
     * the places before the next part are then true. */
    pair_memo *memo = parts > 1 ? pair_memo_new(PAIR_MEMO_MAX) : NULL;
    int ok = 1;
    for (int k = 1; k < parts && ok; k++) {
        size_t from = jobs[k].from;
        ok = from == jobs[k].to || last_tokens(v, p, 0, from, jobs[k].to, node_before(v, p, from), last, memo,
                                               from + v->max_token_len) != 0;
    }
    free(memo);
    return ok;
}

/* The encoding of p[0..n) (n >= 2) by the last token at each place, or 0
 * (nothing emitted) when a place has no token, for the heap. The tokens,
 * read back from last[n], are written from the top of last[] down, never
 * over a place still to be read. */
int bpe_merge_last(out_t *o, const uint8_t *p, size_t n, size_t off, int parts) {
    const struct bpe *v = o->v;
    uint32_t *last = bpe_big_alloc((n + 1) * sizeof *last);
    if (!last) return 0;
    int ok = last_all(v, p, n, last, parts);
    if (ok) {
        size_t w = n + 1;
        for (size_t i = n; i > 0;) {
            uint32_t t = last[i];
            last[--w] = t;
            i -= token_len(v, t);
        }
        emit_tokens(o, last + w, n + 1 - w, off);
    }
    bpe_big_free(last);
    return ok;
}

/* The first place c' in [c, c + SEEK_CUT) below n where can_cut, or n (a
 * bounded linear scan). */
#define SEEK_CUT 4096
typedef int can_cut_fn(const struct bpe *v, const uint8_t *p, size_t c);
static size_t seek_cut(const struct bpe *v, const uint8_t *p, size_t n, size_t c, can_cut_fn *can_cut) {
    size_t limit = c + SEEK_CUT < n ? c + SEEK_CUT : n;
    while (c < limit && !can_cut(v, p, c)) c++;
    return c < limit ? c : n;
}

/* The merges of p[0..n), n >= 2, with no look-up of the whole: the
 * quadratic loop for short ones, the last token at each place for long
 * ones (the heap only when that cannot check a pair). */
void bpe_merge_stretch(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    if (n <= SHORT_PIECE) {
        uint32_t tok[SHORT_PIECE];
        emit_tokens(o, tok, bpe_merge_short(v, p, n, tok), off);
    } else if (n >= UINT32_MAX || !bpe_merge_last(o, p, n, off, piece_parts(o, n))) {
        bpe_merge_long(o, p, n, off);
    }
}

/* Where no token of 2+ bytes has p[i-1] followed by p[i], no merge joins
 * the two sides: every part in a merge process is a token (or one byte).
 * So the encoding of a piece is that of its stretches between such
 * places, each merged alone, far cheaper than the whole when stretches
 * are short (random lowercase letters: one such place every 7 bytes on
 * average; a run of spaces: after every byte; digits: never). A stretch
 * is merged, never looked up whole: one that is a token the merges do not
 * reach still comes out in parts, as it does inside the piece. */

/* Stretches of up to this many bytes (a CJK character, most stretches of
 * CJK text; a byte alone, as in a run of spaces) are written out where
 * they are found. */
#define STRETCH_TINY 3
/* Where the caller's buffer may be short of room, or offsets are wanted,
 * tokens are gathered here first. */
#define STRETCH_BUF 256

/* The end of the stretch that starts at s < n: the first place after s
 * where no token joins the bytes on either side, or n. The byte before
 * the place is carried in k, so a place costs one load and one bit. */
static inline size_t stretch_end(const uint64_t *inner, const uint8_t *p, size_t s, size_t n) {
    unsigned k = p[s];
    size_t e = s + 1;
    for (; e < n; e++) {
        k = (k << 8 | p[e]) & 0xFFFF;
        if (!(inner[k >> 6] >> (k & 63) & 1)) break;
    }
    return e;
}

/* The stretches of p[0..n), each merged alone, into o. Short ones are
 * written straight into the caller's ids when it has room for a token a
 * byte (nearly always), else gathered in a buffer. */
static void encode_stretches(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    const uint32_t *byte_tok = v->byte_tok;
    const uint64_t *inner = v->inner_pairs;
    uint32_t buf[STRETCH_BUF + STRETCH_TINY];
    int direct = !o->offs && has_room(o, n);
    uint32_t *base = direct ? o->ids + o->n : buf, *out = base;
    size_t first = 0;  /* the place base's first token starts at */
    for (size_t s = 0; s < n;) {
        size_t e = stretch_end(inner, p, s, n), len = e - s;
        if (len == 1) {
            *out++ = byte_tok[p[s]];
        } else if (len <= STRETCH_TINY) {
            out += bpe_merge_tiny(v, p + s, len, out);
        } else {
            if (direct) o->n += (size_t)(out - base);
            else emit_tokens(o, buf, (size_t)(out - buf), off + first);
            if (len <= CACHE_BYTES && o->cache)  /* recurs: two CJK characters */
                bpe_merge_piece(o, p + s, len, off + s, bpe_hash_bytes(p + s, len), n - s);
            else
                bpe_merge_stretch(o, p + s, len, off + s);
            base = out = direct ? o->ids + o->n : buf;
            first = e;
        }
        s = e;
        if (!direct && out - buf >= STRETCH_BUF) {
            emit_tokens(o, buf, (size_t)(out - buf), off + first);
            out = buf;
            first = e;
        }
    }
    if (direct) o->n += (size_t)(out - base);
    else emit_tokens(o, buf, (size_t)(out - buf), off + first);
}

/* The merges of p[0..n) (2 <= n <= SHORT_PIECE) into tok, by its
 * stretches: a piece of a few CJK characters has a cut after nearly
 * every character, and its stretches of 1-3 bytes are written out
 * (bpe_merge_tiny) instead of going through the short-piece loop. */
size_t bpe_merge_cut(const struct bpe *v, const uint8_t *p, size_t n, uint32_t *tok) {
    const uint64_t *inner = v->inner_pairs;
    size_t e = stretch_end(inner, p, 0, n);
    if (e == n) return bpe_merge_short(v, p, n, tok);
    uint32_t *out = tok;
    for (size_t s = 0;;) {
        size_t len = e - s;
        if (len == 1) *out++ = v->byte_tok[p[s]];
        else if (len <= STRETCH_TINY) out += bpe_merge_tiny(v, p + s, len, out);
        else out += bpe_merge_short(v, p + s, len, out);
        if ((s = e) == n) break;
        e = stretch_end(inner, p, s, n);
    }
    return (size_t)(out - tok);
}

static int no_token_joins(const struct bpe *v, const uint8_t *p, size_t c) {
    return !bpe_inner_pair(v, p[c - 1], p[c]);
}
typedef struct {
    out_t o;
    const uint8_t *p;
    size_t n;
} stretch_job;

static void stretch_run(void *ctx, int k, cache_slot *cache) {
    (void)cache;
    stretch_job *j = (stretch_job *)ctx + k;
    encode_stretches(&j->o, j->p, j->n, 0);
}

/* encode_stretches, shared by the threads when the piece is long enough:
 * cut at such places into parts of falling size (bpe_part_goal), taken by
 * whichever thread is free, each encoded alone into its own stretch of one
 * buffer, then simply put together.
 * Returns 0, having done nothing, when p has no such place in its first
 * SPLIT_SEEK bytes (a long run of digits has none at all: not looking
 * further saves a pass over it). */
#define SPLIT_SEEK 256

int bpe_split_piece(out_t *o, const uint8_t *p, size_t n, size_t off) {
    const struct bpe *v = o->v;
    size_t first = 1, seek = n < SPLIT_SEEK ? n : SPLIT_SEEK, cuts_seen = 0;
    while (first < seek && bpe_inner_pair(v, p[first - 1], p[first])) first++;
    if (first == seek) return 0;
    /* One thread (every call of bpe_encode): no need to count the cuts. */
    int shares = piece_parts(o, n);
    if (shares >= 2)
        for (size_t i = first; i < seek; i++) cuts_seen += !bpe_inner_pair(v, p[i - 1], p[i]);
    /* Mostly bytes alone (spaces) take too little time to share. */
    if (shares < 2 || 2 * cuts_seen > seek) {
        encode_stretches(o, p, n, off);
        return 1;
    }
    /* Part k's tokens go to buf + cuts[k] + k: at most one token a byte
     * (and one to spare). */
    uint32_t *buf = bpe_big_alloc((n + MAX_PARTS) * sizeof *buf);
    if (!buf) {
        encode_stretches(o, p, n, off);  /* out of memory for the parts: on this thread */
        return 1;
    }
    stretch_job jobs[MAX_PARTS];
    size_t cuts[MAX_PARTS + 1] = {0};
    int parts = 0;
    while (cuts[parts] < n) {
        size_t from = cuts[parts], c = bpe_part_goal(from, n, o->threads), end = n;
        if (c < n && parts < MAX_PARTS - 1) end = seek_cut(v, p, n, c, no_token_joins);
        out_t part = {v, buf + from + parts, NULL, end - from + 1, 0, 0, NULL, 1};
        jobs[parts] = (stretch_job){part, p + from, end - from};
        cuts[++parts] = end;
    }
    job_queue q = {stretch_run, jobs, parts, 0, 0};
    bpe_queue_run(&q, o->threads);
    for (int k = 0; k < parts; k++) emit_tokens(o, jobs[k].o.ids, jobs[k].o.n, off + cuts[k]);
    bpe_big_free(buf);
    return 1;
}
