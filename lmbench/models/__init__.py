"""Models behind one interface (`base.LanguageModel`), looked up by spec name in `registry`."""
