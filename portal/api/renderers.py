"""The API's JSON renderer: DRF's JSONRenderer output, encoded by orjson.

DRF's renderer goes through the standard library's `json` (pure-Python iteration over each
dict and list, ~0.6 ms for a 50-quote page); orjson writes the same compact UTF-8 JSON in a
tenth of that. The values stay DRF's: dates, times and date-times, and anything orjson does
not know natively (Decimal, lazy translation strings, querysets...), go through DRF's own
`JSONEncoder.default` (`OPT_PASSTHROUGH_DATETIME`), so a date-time reads "…Z" with
milliseconds exactly as before. Whatever orjson refuses (an integer beyond 64 bits, a key of
an unsupported type, a NaN is the one difference: null instead of DRF's ValueError) and any
indented rendering (`Accept: application/json; indent=4`) falls back to DRF's renderer. As
DRF does, U+2028 and U+2029 are escaped (valid JSON, not valid JavaScript when raw).
"""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_default = JSONEncoder().default


class OrjsonRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        renderer_context = renderer_context or {}
        if (
            self.get_indent(accepted_media_type, renderer_context) is None
            and self.encoder_class is JSONEncoder
            and self.compact
            and not self.ensure_ascii
        ):
            try:
                out = orjson.dumps(data, default=_default, option=_OPTIONS)
            except orjson.JSONEncodeError:
                pass
            else:
                if b"\xe2\x80" in out:  # as DRF: U+2028/U+2029 escaped for JavaScript
                    out = out.replace(b"\xe2\x80\xa8", b"\\u2028")
                    out = out.replace(b"\xe2\x80\xa9", b"\\u2029")
                return out
        return super().render(data, accepted_media_type, renderer_context)
