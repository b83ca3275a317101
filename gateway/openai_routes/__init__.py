"""The simple OpenAI routes and the hosted objects, as adapters on the request cycle.

* :mod:`.passthrough` and :mod:`.table`: the governed passthrough of completions, moderations,
  images and audio (:mod:`.requests` reads the model, :mod:`.multipart` rewrites uploads in
  place, :mod:`.streams` says how their event streams commit and end);
* :mod:`.files` and :mod:`.batches`: owner-scoped files and batches (:mod:`.objects`: ids and
  records; :mod:`.hosted`: what the two share, their admission among it; :mod:`.batch_usage`: a
  finished batch's tokens charged once).
"""
