#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Trains the scrubber's stage-2 classifier, reproducibly (pure Python 3 standard library,
fixed seed): generates synthetic secrets of many shapes and look-alikes (UUIDs, git SHAs,
SHA-256 digests, base64 of English prose, long identifiers, version strings, paths, URLs,
words), computes the features exactly as lib/scrub/classify.c does, fits a logistic
regression by full-batch gradient descent on standardised features, and calibrates the
threshold on held-aside look-alikes for at most 1% false positives.

usage: train.py [--out model.json] [--features TOKEN BEFORE]   (the latter prints the features
of one token as JSON, for the test that compares them with the C side)
"""
import base64
import hashlib
import json
import math
import random
import string
import sys
import uuid

SEED = 20261123
NFEAT = 17
# frequent English letter pairs: words and identifiers are made of them, random tokens rarely
BIGRAMS = set("""ac ad ag al am an ap ar as at av ay be bl br ca ce ch ci co ct de di do ea ec ed ei el em en ep er es et ew ex fi fo fr ge gr ha he hi ic id ie ig il im in io ir is it iv ke la ld le li ll lo ly ma me mi mo na nc nd ne ng ni no ns nt of ol om on op or os ot ou ow pa pe pl po pr qu ra rd re ri ro rs rt ry se sh si so sp ss st su ta te th ti to tr ts ty ul um un up ur us ut ve""".split())
CONTEXT_WORDS = ["key", "token", "secret", "passw", "pwd", "auth", "credential", "bearer", "api"]
TOKEN_CHARS = set((string.ascii_letters + string.digits + "+/=_.-").encode())


def cclass(c):
    if 97 <= c <= 122:
        return 0
    if 65 <= c <= 90:
        return 1
    if 48 <= c <= 57:
        return 2
    return 3


def shannon(tok):
    n = len(tok)
    if not n:
        return 0.0
    counts = [0] * 256
    for c in tok:
        counts[c] += 1
    h = 0.0
    for c in range(256):
        if counts[c]:
            p = counts[c] / n
            h -= p * math.log2(p)
    return h


def bigram_share(tok):
    pairs = common = 0
    for a, b in zip(tok, tok[1:]):
        if chr(a).isalpha() and chr(b).isalpha() and a < 128 and b < 128:
            pairs += 1
            common += (chr(a).lower() + chr(b).lower()) in BIGRAMS
    return common / pairs if pairs else 0.0


def features(tok, before):
    """tok, before: bytes. Must match exai__cls_features() in classify.c exactly."""
    n = len(tok)
    cnt = [0, 0, 0, 0]
    trans = slash_dot = vowels = 0
    run_a = best_a = run_d = best_d = 0
    hexl = hexu = True
    for i, c in enumerate(tok):
        k = cclass(c)
        cnt[k] += 1
        if i and cclass(tok[i - 1]) != k:
            trans += 1
        if c in b"/.":
            slash_dot += 1
        if c in b"aeiouAEIOU":
            vowels += 1
        run_a = run_a + 1 if k <= 1 else 0
        run_d = run_d + 1 if k == 2 else 0
        best_a = max(best_a, run_a)
        best_d = max(best_d, run_d)
        hexl = hexl and (48 <= c <= 57 or 97 <= c <= 102)
        hexu = hexu and (48 <= c <= 57 or 65 <= c <= 70)
    is_uuid = n == 36 and all((tok[i] == 45) if i in (8, 13, 18, 23) else chr(tok[i]) in string.hexdigits
                              for i in range(n))
    low = before[-32:].lower()
    kw = any(w.encode() in low for w in CONTEXT_WORDS)
    h = shannon(tok)
    letters = cnt[0] + cnt[1]
    return [
        n / 64.0,
        h,
        cnt[0] / n,
        cnt[1] / n,
        cnt[2] / n,
        cnt[3] / n,
        trans / (n - 1) if n > 1 else 0.0,
        ((cnt[0] > 0) + (cnt[1] > 0) + (cnt[2] > 0) + (cnt[3] > 0)) / 4.0,
        1.0 if (hexl or hexu) else 0.0,
        1.0 if is_uuid else 0.0,
        1.0 if kw else 0.0,
        slash_dot / n,
        best_a / n,
        vowels / letters if letters else 0.0,
        min(1.0, h / math.log2(n)),
        best_d / n,
        bigram_share(tok),
    ]


# ---- synthetic data ------------------------------------------------------------------------

WORDS = ("the of and to in is you that it he was for on are as with his they be at one have this from or had "
         "by word but what some we can out other were all there when up use your how said an each she which do "
         "their time if will way about many then them write would like so these her long make thing see him "
         "two has look more day could go come did number sound no most people my over know water than call "
         "first who may down side been now find any new work part take get place made live where after back "
         "little only round man year came show every good me give our under name very through just form "
         "sentence great think say help low line differ turn cause much mean before move right boy old too "
         "same tell does set three want air well also play small end put home read hand port large spell add "
         "even land here must big high such follow act why ask men change went light kind off need house "
         "picture try us again animal point mother world near build self earth father config server client "
         "request response handler manager factory builder service provider default value option setting "
         "parser buffer stream reader writer context session user account project module package release "
         "version update install build test debug error warning message").split()

B62 = string.ascii_letters + string.digits
SECRET_CONTEXT = ["api_key = ", "token: ", "SECRET=", "password=", "\"auth\": \"", "Authorization: Bearer ",
                  "export APP_SECRET_KEY=", "client_secret: ", "--token ", "pwd: "]
NEUTRAL_CONTEXT = ["see ", "commit ", "at ", "version ", "in ", "file ", "id: ", "checksum ", "from ", "", "the ",
                   "digest: ", "path ", "url: ", "hash "]


def rand_str(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def gen_secret(rng):
    kind = rng.randrange(12)
    if kind == 8:  # letters only, mixed case (hf_..., api_org_...)
        pre = rng.choice(["", "", rand_str(rng, string.ascii_lowercase, rng.randint(2, 4)) + "_"])
        return pre + rand_str(rng, string.ascii_letters, rng.randint(24, 48))
    if kind == 9:  # a prefix and hex (dapi..., glc_...)
        pre = rand_str(rng, string.ascii_lowercase, rng.randint(2, 6)) + rng.choice(["", "_", "-", "."])
        return pre + rand_str(rng, "0123456789abcdef", rng.randint(32, 64))
    if kind == 10:  # lower-case and digits (many SaaS keys)
        return rand_str(rng, string.ascii_lowercase + string.digits, rng.randint(24, 64))
    if kind == 11:  # long base64url blobs (service-account tokens), cut to the token limit
        return "".join(rng.choice(B62 + "_-") for _ in range(rng.randint(80, 200)))
    if kind == 0:
        return rand_str(rng, B62, rng.randint(20, 64))
    if kind == 1:
        return base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randint(16, 48)))).decode()
    if kind == 2:
        pre = rand_str(rng, string.ascii_lowercase, rng.randint(2, 5)) + rng.choice("_-")
        return pre + rand_str(rng, B62, rng.randint(24, 48))
    if kind == 3:
        return base64.urlsafe_b64encode(bytes(rng.randrange(256) for _ in range(rng.randint(18, 40)))).decode().rstrip("=")
    if kind == 4:
        return "-".join(rand_str(rng, B62, rng.randint(6, 12)) for _ in range(rng.randint(3, 5)))
    if kind == 5:
        return rand_str(rng, string.ascii_uppercase + string.digits, rng.randint(20, 40))
    if kind == 6:
        return rand_str(rng, B62 + "_-", rng.randint(30, 80))
    return rand_str(rng, B62 + "+/", rng.randint(24, 60))


def gen_lookalike(rng):
    kind = rng.randrange(12)
    rb = bytes(rng.randrange(256) for _ in range(32))
    if kind == 0:
        return str(uuid.UUID(bytes=rb[:16], version=4))
    if kind == 1:
        return hashlib.sha1(rb).hexdigest()
    if kind == 2:
        return hashlib.sha256(rb).hexdigest()
    if kind == 3:
        prose = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        return base64.b64encode(prose.encode()).decode()
    if kind == 4:
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
        style = rng.randrange(4)
        if style == 0:
            return "_".join(words)
        if style == 1:
            return words[0] + "".join(w.capitalize() for w in words[1:])
        if style == 2:
            return "-".join(words)
        return "_".join(w.upper() for w in words)
    if kind == 5:
        v = ".".join(str(rng.randint(0, 40)) for _ in range(rng.randint(3, 4)))
        return rng.choice(["v", "", "release-", "python-"]) + v + rng.choice(["", "-beta." + str(rng.randint(1, 9)), "-rc1", "+build." + str(rng.randint(1, 999))])
    if kind == 6:
        return "/" + "/".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + rng.choice(["", ".py", ".md", ".json", ".so.1"])
    if kind == 7:
        host = rng.choice(WORDS) + "." + rng.choice(["com", "org", "io", "dev"])
        return "//" + host + "/" + "/".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
    if kind == 8:
        return rng.choice(WORDS) + "." + rng.choice(WORDS) + "." + rng.choice(WORDS) + "." + rng.choice(WORDS) + "." + rng.choice(WORDS)
    if kind == 9:
        return hashlib.md5(rb).hexdigest()
    if kind == 10:
        return "sha256-" + base64.b64encode(hashlib.sha256(rb).digest()).decode()
    return "%04d-%02d-%02dT%02d.%02d.%02d.%06dZ" % (rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28),
                                                  rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999999))


def sample(rng, positive):
    if positive:
        tok = gen_secret(rng)
        before = rng.choice(SECRET_CONTEXT) if rng.random() < 0.6 else rng.choice(NEUTRAL_CONTEXT)
    else:
        tok = gen_lookalike(rng)
        before = rng.choice(NEUTRAL_CONTEXT) if rng.random() < 0.85 else rng.choice(SECRET_CONTEXT)
    tok = tok.encode()
    # the engine's token rule: runs of [A-Za-z0-9+/=_.-], 16-200 bytes, trailing . - _ trimmed
    tok = bytes(c for c in tok if c in TOKEN_CHARS).rstrip(b".-_")
    if not 16 <= len(tok) <= 200:
        return None
    return features(tok, ("prefix text " + before).encode()), 1 if positive else 0


def sigmoid(z):
    if z < -60:
        return 0.0
    if z > 60:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def train(n_per_class=4000, epochs=500, lr=0.5, l2=1e-3):
    rng = random.Random(SEED)
    data = []
    for positive in (True, False):
        got = 0
        while got < n_per_class:
            s = sample(rng, positive)
            if s:
                data.append(s)
                got += 1
    rng.shuffle(data)
    # held-aside: 25% of each class for calibration and the reported rates
    split = len(data) * 3 // 4
    tr, ho = data[:split], data[split:]
    mean = [sum(x[i] for x, _ in tr) / len(tr) for i in range(NFEAT)]
    std = []
    for i in range(NFEAT):
        v = sum((x[i] - mean[i]) ** 2 for x, _ in tr) / len(tr)
        std.append(math.sqrt(v) if v > 1e-12 else 1.0)
    Z = [([(x[i] - mean[i]) / std[i] for i in range(NFEAT)], y) for x, y in tr]
    w = [0.0] * NFEAT
    b = 0.0
    n = len(Z)
    for _ in range(epochs):
        gw = [0.0] * NFEAT
        gb = 0.0
        for z, y in Z:
            p = sigmoid(b + sum(wi * zi for wi, zi in zip(w, z)))
            e = p - y
            gb += e
            for i in range(NFEAT):
                gw[i] += e * z[i]
        for i in range(NFEAT):
            w[i] -= lr * (gw[i] / n + l2 * w[i])
        b -= lr * gb / n

    def score(x):
        return sigmoid(b + sum(w[i] * (x[i] - mean[i]) / std[i] for i in range(NFEAT)))

    neg = sorted(score(x) for x, y in ho if y == 0)
    pos = [score(x) for x, y in ho if y == 1]
    # the smallest threshold with at most 1% of held-aside look-alikes at or above it
    k = int(math.floor(len(neg) * 0.01))
    thr = neg[len(neg) - k - 1] + 1e-9 if k < len(neg) else 0.5
    thr = max(thr, 0.5)
    fpr = sum(1 for s in neg if s >= thr) / len(neg)
    tpr = sum(1 for s in pos if s >= thr) / len(pos)
    return {
        "format": 1,
        "seed": SEED,
        "features": ["len/64", "entropy", "lower", "upper", "digit", "symbol", "transitions", "classes/4",
                     "hex", "uuid", "context_word", "slash_dot", "alpha_run", "vowels", "entropy_norm",
                     "digit_run", "english_bigrams"],
        "mean": mean,
        "std": std,
        "weights": w,
        "bias": b,
        "threshold": thr,
        "heldout": {"negatives": len(neg), "positives": len(pos), "false_positive_rate": fpr,
                    "true_positive_rate": tpr},
    }


def main(argv):
    if len(argv) >= 1 and argv[0] == "--features":
        toks = argv[1:]
        out = []
        for i in range(0, len(toks), 2):
            out.append(features(toks[i].encode(), toks[i + 1].encode()))
        print(json.dumps(out))
        return 0
    out = "model.json"
    if len(argv) >= 2 and argv[0] == "--out":
        out = argv[1]
    model = train()
    with open(out, "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")
    print("held-aside: TPR %.4f FPR %.4f threshold %.4f" % (model["heldout"]["true_positive_rate"],
                                                            model["heldout"]["false_positive_rate"],
                                                            model["threshold"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
