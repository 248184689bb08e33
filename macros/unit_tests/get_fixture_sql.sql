{#-
    dbt's get_fixture_sql (the rows of a unit test's `given` input, as SQL), which reads the
    input's column types from the database and fails when the table is not there. A raw
    source not loaded yet (a phase of the migration without that export: `dbt build` runs
    the unit tests too) takes its columns from macro raw_source_columns instead, every one
    text as `luckygas load` stages them, beside the lineage columns (macro
    raw_table_columns): the unit tests then pass or fail on their own rows in every
    phase. Anything else is dbt's own.
-#}
{% macro get_fixture_sql(rows, column_name_to_data_types) -%}
    {#- a source's stand-in in a unit test is a model node that keeps the source's name -#}
    {%- if not column_name_to_data_types and execute and model.get('source_name')
        and load_relation(this) is none -%}
        -- Fixture for {{ model.name }} (raw table not loaded: columns of raw_source_columns)
        {{ raw_fixture_sql(raw_table_columns(model.source_name, model.name), rows) }}
    {%- else -%}
        {{ dbt.get_fixture_sql(rows, column_name_to_data_types) }}
    {%- endif -%}
{%- endmacro %}
