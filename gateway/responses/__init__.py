"""The Responses API with its state in Redis: ``previous_response_id`` on every upstream.

* :mod:`.request`: decoding and checking a create request;
* :mod:`.items`: input/output items (normalising, ids, the tool-output check, replay shaping);
* :mod:`.upstreams`: one request in flight (:class:`~.upstreams.Turn`): native chaining or
  replay per deployment, bodies and answers for Responses, Chat and Anthropic upstreams;
* :mod:`.endpoint`: ``POST /v1/responses`` on the exchange (a background run is queued);
* :mod:`.stream`: converters and the relay that records before the terminal event;
* :mod:`.service`: the reads (retrieve, delete, cancel, input items);
* :mod:`.compact` and :mod:`.compaction`: ``/responses/compact`` and compaction items;
* :mod:`.input_tokens`: ``/responses/input_tokens``;
* :mod:`.session`: a WebSocket connection's last unstored responses (the socket is ``gateway.api.socket``);
* :mod:`.prepared`: ``generate: false`` over a WebSocket (state prepared without model output);
* :mod:`.frames`: events out of SSE frames;
* :mod:`.background` and :mod:`.worker`: background runs as jobs on any replica.

The records and the chains' materialized histories live in :mod:`gateway.responses.store`.

**Ids.** Clients only ever see ids the gateway minted (``resp_`` and 48 hex digits), whatever
the upstream: a chain may move between deployments and upstreams (a fallback, a replay), and an
id must not change when it does; Chat and Anthropic upstreams have no response ids at all; an
upstream's id would tell clients which provider answered; and the record is keyed by the id the
client holds. The upstream's own id is kept in the record (``upstream_id``) and used only to
chain natively on the deployment that produced it. Output item ids (``msg_``, ``fc_``, ``rs_``)
are the upstream's own, or minted by the translators for Chat and Anthropic answers.
"""
