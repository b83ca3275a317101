"""``POST /v1/embeddings``: the request (:mod:`.request`), the vectors in the client's encoding
and batches joined (:mod:`.vectors`), the adapter on the request cycle (:mod:`.endpoint`)."""
