"""The Discord side of the core: delivery of results, embeds, buttons, autocomplete, the command tree."""
