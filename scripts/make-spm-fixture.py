#!/usr/bin/python3
"""SentencePiece fixtures for test/data/sentencepiece.test.ts: two small unigram models trained by the
reference implementation (Debian's python3-sentencepiece) on a few hundred referring expressions,
and the ids the reference encoder gives for ~50 test sentences chosen to hit every rule of the
encoder: NFKC (full-width forms, ligatures, composed vs decomposed accents, compatibility spaces),
whitespace handling (leading, trailing, repeated, tabs and newlines, empty and all-space input),
unknown characters (CJK, emoji), user-defined symbols, byte fallback, and truncation at T = 22.

  test/fixtures/spm/nfkc.model       like beit3.spm / XLM-R: unigram, nmt_nfkc, no byte fallback,
                                     character_coverage < 1 so rare characters are <unk>
  test/fixtures/spm/bytes.model      unigram, identity normalization (no character map), byte_fallback,
                                     user-defined symbols "[obj]" and "left-most"
  test/fixtures/spm/expected.json    per model and sentence: sentencepiece ids and pieces, and the
                                     BEiT-3 framing (XLMRobertaTokenizer ids: spm id i -> i + 1, spm
                                     <unk> 0 -> 3; [<s>=0] + ids[:T-2] + [</s>=2], padded with <pad>=1)

Regenerate (Debian's python3-sentencepiece; the pyenv `python3` on PATH has none):
    /usr/bin/python3 scripts/make-spm-fixture.py
"""

import io
import json
import os
import random

import sentencepiece as spm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "spm")
T = 22

COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "orange", "pink", "purple", "gray"]
THINGS = ["man", "woman", "person", "dog", "cat", "car", "bus", "chair", "table", "umbrella", "giraffe",
          "elephant", "horse", "bike", "bowl", "sandwich", "pizza", "laptop", "couch", "kid", "player"]
WHERE = ["on the left", "on the right", "in the middle", "in front", "in the back", "at the top",
         "at the bottom", "closest to the camera", "far left", "far right", "second from left"]
EXTRA = ["wearing a hat", "holding an umbrella", "with glasses", "sitting down", "standing up",
         "next to the window", "behind the fence", "under the tree", "near the door", "eating pizza"]
# A few accented and non-ASCII words so the model keeps some (and character_coverage drops the rarest).
FOREIGN = ["café", "crème brûlée", "naïve", "façade", "über", "smörgåsbord", "piñata", "jalapeño"]


def corpus(rng):
    lines = []
    for _ in range(400):
        parts = [rng.choice(["the", "a", ""]), rng.choice(COLORS), rng.choice(THINGS)]
        if rng.random() < 0.7:
            parts.append(rng.choice(WHERE))
        if rng.random() < 0.5:
            parts.append(rng.choice(EXTRA))
        if rng.random() < 0.15:
            parts.append(rng.choice(FOREIGN))
        if rng.random() < 0.1:
            parts.append(str(rng.randint(1, 99)))
        s = " ".join(p for p in parts if p)
        if rng.random() < 0.3:
            s = s.capitalize()
        if rng.random() < 0.2:
            s += rng.choice([".", "!", "?", ","])
        lines.append(s)
    lines += ["left-most [obj] on the table", "the left-most one", "[obj] near [obj]"] * 3
    return lines


SENTENCES = [
    "the man on the left",
    "a red umbrella",
    "blue car in the middle",
    "The Woman wearing a hat.",
    "giraffe closest to the camera",
    "",
    "   ",
    "  leading spaces",
    "trailing spaces   ",
    "many    spaces   between   words",
    "tab\tseparated\twords",
    "new\nline",
    "MIXED case WORDS",
    "Dog?! Cat... Horse,",
    "second from left, 2nd row",
    "number 42 and 7",
    "café au lait",
    "cafe\u0301 au lait",  # decomposed é: NFKC composes it
    "crème brûlée",
    "naïve façade",
    "ＡＢＣ full width １２３",  # NFKC: ASCII
    "ﬁsh and ﬂowers",  # ligatures
    "non\u00a0breaking space",
    "ideographic\u3000space",
    "em\u2003space",
    "zero\u200bwidth",
    "soft\u00adhyphen",
    "super²script",
    "ⅷ roman",
    "〈brackets〉",
    "東京の犬",  # CJK: unknown characters
    "emoji 🐶 dog",
    "only 🐱🐱",
    "smörgåsbord and piñata",
    "über jalapeño",
    "ñ",
    "x",
    "\u2581 literal lower one eighth block",
    "[obj] on the left",
    "the left-most [obj]",
    "left-most",
    "[obj][obj]",
    "umbrellaumbrella",
    "theman",
    "a very long expression about the man in the blue shirt standing next to the woman holding a red umbrella near the bus",
    "yellow bus at the bottom right corner of the picture behind the fence and under the tree near the door",
    "ß and ẞ",
    "İstanbul",
    "Ωmega ohm",
    "don't stop",
    "quote \"this\" and 'that'",
    "¡hola!",
]


def fairseq(ids):
    return [i + 1 if i else 3 for i in ids]


def beit3(ids):
    body = fairseq(ids)[: T - 2]
    out = [0] + body + [2]
    return out + [1] * (T - len(out))


def train(name, **kw):
    rng = random.Random(20240611)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus(rng)),
        model_writer=model,
        model_type="unigram",
        vocab_size=kw.pop("vocab_size"),
        num_threads=1,
        seed_sentencepiece_size=100000,
        hard_vocab_limit=False,
        minloglevel=2,
        **kw,
    )
    data = model.getvalue()
    with open(os.path.join(OUT, f"{name}.model"), "wb") as f:
        f.write(data)
    sp = spm.SentencePieceProcessor(model_proto=data)
    cases = []
    for s in SENTENCES:
        ids = sp.encode(s)
        cases.append({"text": s, "ids": ids, "pieces": sp.encode(s, out_type=str), "beit3": beit3(ids)})
    return {"file": f"{name}.model", "size": sp.get_piece_size(), "cases": cases}, len(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {"generator": "scripts/make-spm-fixture.py", "sentencepiece": spm.__version__, "T": T, "models": {}}
    sizes = {}
    expected["models"]["nfkc"], sizes["nfkc"] = train(
        "nfkc", vocab_size=200, normalization_rule_name="nmt_nfkc", character_coverage=0.995
    )
    expected["models"]["bytes"], sizes["bytes"] = train(
        "bytes",
        vocab_size=400,
        normalization_rule_name="identity",
        byte_fallback=True,
        character_coverage=0.995,
        user_defined_symbols=["[obj]", "left-most"],
    )
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    for name, m in expected["models"].items():
        unk = sum(1 for c in m["cases"] for i in c["ids"] if i == 0)
        print(f"{name}.model: {sizes[name]} bytes, {m['size']} pieces, {unk} <unk> ids over {len(m['cases'])} sentences")


if __name__ == "__main__":
    main()
