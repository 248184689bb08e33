{#-
    The on-run-start hook: a dbt command that builds or tests models reading the raw
    sources stops at once, with one line, when nothing was ever loaded (no raw._sources,
    the loader's bookkeeping that the first `luckygas load` creates), instead of failing
    model after model on the missing tables. Seeds, tests of seeds alone (the Taiwan-date
    vectors) and dbt's unit tests (their fixtures stand in for the raw tables) need no load.
-#}
{% macro require_load() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set needs_raw = [] -%}
    {%- for unique_id in selected_resources -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node and node.resource_type in ['model', 'test', 'snapshot']
            and reads_models_or_sources(node) -%}
            {%- do needs_raw.append(unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if needs_raw -%}
        {%- set bookkeeping = source('loader', 'sources') -%}
        {%- if adapter.get_relation(
            database=bookkeeping.database, schema=bookkeeping.schema,
            identifier=bookkeeping.identifier) is none -%}
            {{ exceptions.raise_compiler_error(
                'no load yet: run `luckygas load PATH` first (database '
                ~ target.database ~ ' has no ' ~ bookkeeping.schema ~ '.'
                ~ bookkeeping.identifier ~ ': nothing was staged into schema raw)') }}
        {%- endif -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
