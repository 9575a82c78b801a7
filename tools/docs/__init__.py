"""The offline documentation renderer of `make docs` (`tools.docs.build.build_docs`); nbs/91_docs.ipynb explains it."""
