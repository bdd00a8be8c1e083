"""Values and rules every layer of Sluice uses: errors, events, names, validation, options, codecs."""
