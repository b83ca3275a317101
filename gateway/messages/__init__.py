"""The Anthropic-compatible ingress: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

* :mod:`.endpoint`: the Messages route on the exchange (passthrough to Anthropic upstreams,
  translation through the canonical Chat request for every other upstream);
* :mod:`.count_tokens`: the prompt's input tokens (the upstream's count, or the estimate);
* :mod:`.request`: decoding and checking a request in Anthropic's words;
* :mod:`.passthrough`: the client's body with only the model name changed;
* :mod:`.relay`: a translated stream as Anthropic events, with ping keep-alives;
* :mod:`.continuation`: a stream broken after its commit point, continued as the same message;
* :mod:`.usage`: usage read from Anthropic answers and streams.
"""
