"""Adapters for the local, no-cloud service: files on disk and SQLite.

Import each adapter from its own module (``fs_blob_store``, ``sqlite_metadata_store``, ...); this
package deliberately re-exports nothing, so adding an adapter never touches a shared file.
"""
