"""Write clip-server's own token ids for >= 1,000 tricky strings (the tokenizer parity fixture).

Runs in the encoder venv (it imports clip_server), never in the gateway's:

    .venv-encoder/bin/python scripts/make_tokenizer_fixture.py

Output: ``tests/fixtures/tokenizer/clip_server_tokens.jsonl.gz``, one JSON object per line
with ``text``, ``input_ids`` and ``attention_mask`` (77 ints each). The string list is
deterministic (seeded), so re-running gives a byte-identical file.
"""

# Look-alike characters (fullwidth, curly quotes) are what this fixture is for.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests/fixtures/tokenizer/clip_server_tokens.jsonl.gz"
MODEL_NAME = "ViT-B-32::openai"
CONTEXT_LENGTH = 77

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "purple", "orange", "grey"]
SUBJECTS = [
    "dog", "cat", "horse", "bicycle", "car", "child", "woman", "man", "bird", "boat",
    "pizza", "laptop", "mountain", "skyscraper", "teddy bear", "giraffe", "surfboard",
]  # fmt: skip
PLACES = [
    "on a beach", "in a kitchen", "at night", "under the rain", "next to a tree",
    "in the snow", "on a busy street", "in front of a house", "on a wooden table",
]  # fmt: skip
TEMPLATES = [
    "a photo of a {c} {s} {p}",
    "A {c} {s} {p}.",
    "two {s}s {p}, one of them {c}",
    "Close-up of a {s} ({c}) {p}!",
    "{S} {p}; it's {c}",
    "an old black-and-white picture of a {s}",
]

UNICODE = [
    "café au lait", "naïve résumé", "Crème brûlée à la française", "Ångström", "São Paulo",
    "Zürich Hauptbahnhof", "smørrebrød", "Łódź", "İstanbul", "straße", "ΕΛΛΗΝΙΚΆ γράμματα",
    "Привет, мир!", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "안녕하세요 세계", "Tiếng Việt có dấu", "e\u0301te\u0301 (combining accents)",
    "ﬁne ﬂour (ligatures)", "ＡＢＣ　ｆｕｌｌｗｉｄｔｈ　１２３", "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen", "non\u00a0breaking\u00a0space", "tab\tand\nnewline\r\nmixed",
    "bell\x07control\x1bchars", "right-to-left \u202eoverride", "ǅemal titlecase",
]  # fmt: skip
CHINESE = [
    "一只猫坐在沙发上", "海边的日落", "红色的汽车停在路边", "我爱北京天安门",
    "你好，世界！", "两只狗在草地上奔跑。", "繁體中文的句子", "中文English混合text",
]  # fmt: skip
JAPANESE = [
    "桜の木の下で猫が寝ている", "東京タワーの夜景", "すしとラーメン", "カタカナのテキスト",
    "ひらがなだけのぶん", "ｶﾀｶﾅ半角", "日本語とEnglishのmix", "「かぎかっこ」と『二重』",
]  # fmt: skip
EMOJI = [
    "🐶", "🐱🐭🐹", "I ❤️ NY", "👍🏽 thumbs up", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵 flags",
    "🏳️‍🌈", "sunset 🌅 over the sea 🌊", "😀😃😄😁😆😅😂🤣", "✨ sparkles ✨", "☕️ coffee",
    "🧑🏿‍🚀 astronaut", "1️⃣ keycap", "©®™", "♠♣♥♦",
]  # fmt: skip
PUNCT = [
    "!!!", "...", "?!?!", "--", "—", "–", "“smart quotes”", "‘single’", "«guillemets»",
    "(parentheses) [brackets] {braces}", "a/b\\c|d", "#hashtag @mention", "email@example.com",
    "https://example.com/path?q=1&r=2#frag", "C++ / C# / F#", "50% off!!!", "~`^_=+*",
    "<html><body>tags</body></html>", "'quoted'", '"double"', "semi;colon:colon",
]  # fmt: skip
HTML = [
    "Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "double &amp;amp; escaped", "it&#39;s",
    "&quot;quoted&quot;", "caf&eacute;", "non&nbsp;breaking", "&#x1F600; smiley",
    "&amp;lt;nested&amp;gt;", "AT&T", "fish & chips", "&notanentity;", "&copy; 2024",
]  # fmt: skip
MOJIBAKE = [
    "cafÃ©", "â€œquotedâ€\x9d", "Ã¼ber cool", "naÃ¯ve", "donâ€™t", "SÃ£o Paulo",
    "Ã\xa0 la carte", "ZÃ¼rich", "Ã©tÃ©", "â€”em dashâ€”", "ðŸ˜€ emoji mojibake",
]  # fmt: skip
NUMBERS = [
    "0", "7", "42", "123456789", "3.14159", "1,000,000", "2024-01-01", "$9.99", "€100",
    "10:30 pm", "1st 2nd 3rd 4th", "½ cup", "²³ superscripts", "Ⅻ roman", "١٢٣ arabic digits",
    "٣.١٤", "1e10", "-273.15°C", "+33 1 23 45 67 89", "0x1F", "3×4=12",
]  # fmt: skip
CONTRACTIONS = [
    "don't", "DON'T", "I'm", "I'M here", "it's", "they'll", "we've", "you'd", "she'S",
    "can't won't shouldn't", "rock 'n' roll", "’s curly apostrophe", "y'all'd've",
    "o'clock", "'s at start", "dogs' bowls", "ma'am",
]  # fmt: skip
BLANK = ["", " ", "   ", "\t", "\n", "\r\n", " \t \n ", "\u3000", "\u00a0", "\u2003", "\u200b"]
SPECIAL = [
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|STARTOFTEXT|>",
    "<|startoftext|>hello<|endoftext|>", "</w>", "<|unknown|>",
]  # fmt: skip

# Characters for random strings: a bit of everything above, so odd combinations get tested.
CHAR_POOL = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     "
    "'''.,;:!?-_()[]{}\"/\\&#@%*+=<>|~`^$"
    "éèêëàâäôöûüçñßøåæœÉÀÇÑ"
    "猫狗山水日本語中文字桜ひらがなカタカナ"
    "😀🐶❤️👍🏽🌅✨🇫🇷\u200d\u0301\u00a0\u3000\t\n"
    "αβγδΩЖЯщ"
)


def long_texts() -> list[str]:
    """Texts far beyond 77 tokens, and some right at the truncation boundary."""
    out = []
    base = "a very detailed photograph of a red bicycle leaning against a brick wall "
    for n in (5, 10, 40):
        out.append(base * n)
    out.append(" ".join(str(i) for i in range(200)))
    out.append("猫" * 300)
    out.append("😀" * 100)
    out.append("supercalifragilisticexpialidocious " * 30)
    # Around the boundary: 75 + SOT + EOT = 77 exactly, then 76, 77, 78 words.
    for n in range(70, 81):
        out.append(" ".join(["dog"] * n))
    out.append("word " * 74 + "pneumonoultramicroscopicsilicovolcanoconiosis")
    return out


def build_strings(seed: int = 1234) -> list[str]:
    """The deterministic list of test strings (order matters only for reproducibility)."""
    rng = random.Random(seed)
    texts: list[str] = []
    for t in TEMPLATES:
        for c in COLOURS:
            for s in SUBJECTS[:9]:
                texts.append(t.format(c=c, s=s, S=s.capitalize(), p=rng.choice(PLACES)))
    fixed = UNICODE + CHINESE + JAPANESE + EMOJI + PUNCT + HTML + MOJIBAKE + NUMBERS
    texts += fixed + CONTRACTIONS + BLANK + SPECIAL + long_texts()
    # Mixed-case and padded variants of the fixed strings.
    texts += [f"  {s.upper()}  " for s in fixed]
    # Random strings of random length, from short to over the context length.
    for _ in range(450):
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80, 160])
        texts.append("".join(rng.choice(CHAR_POOL) for _ in range(n)))
    # Random word salads from the fixed lists.
    for _ in range(150):
        texts.append(" ".join(rng.choice(fixed + CONTRACTIONS) for _ in range(rng.randint(2, 6))))
    return list(dict.fromkeys(texts))  # unique, first occurrence kept


def main() -> None:
    """Tokenize every string with clip-server's Tokenizer and write the gzipped JSONL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from clip_server.model.tokenization import Tokenizer

    tokenizer = Tokenizer(MODEL_NAME)
    texts = build_strings()
    assert len(texts) >= 1000, len(texts)
    enc = tokenizer(texts, context_length=CONTEXT_LENGTH, truncate=True)
    ids = enc["input_ids"].tolist()
    mask = enc["attention_mask"].tolist()
    buf = io.StringIO()
    for text, row_ids, row_mask in zip(texts, ids, mask, strict=True):
        record = {"text": text, "input_ids": row_ids, "attention_mask": row_mask}
        buf.write(json.dumps(record, ensure_ascii=False) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and no file name in the header: the same strings give the same bytes.
    with open(args.out, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    print(f"wrote {len(texts)} strings to {args.out}")


if __name__ == "__main__":
    main()
