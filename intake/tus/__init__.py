"""Resumable uploads over tus 1.0 (core, creation, creation-with-upload, termination, checksum,
expiration) on an institution's domain, streamed into tenant storage with bounded memory.

Any standard tus client (tus-js-client in the wizard, tuspy, ...) can talk to ``/intake/tus/``.
"""
