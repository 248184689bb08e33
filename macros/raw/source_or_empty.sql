{#-
    `select * from` a source table, or, when the table is not in the database (that export
    was not loaded: a migration of the client workbook and the history without the legacy
    app), an empty relation with the given text columns and the loader's lineage columns,
    so the models downstream build and reconcile to zero rows instead of failing. Which
    files were loaded is validation.raw_tables' business, not a build error.
-#}
{% macro source_or_empty(source_name, table_name, columns) -%}
{%- set relation = source(source_name, table_name) -%}
{%- if execute and adapter.get_relation(
    database=relation.database, schema=relation.schema,
    identifier=relation.identifier) is none -%}
{%- set casts = [] -%}
{%- for column in columns -%}
    {%- do casts.append('cast(null as text) as ' ~ adapter.quote(column)) -%}
{%- endfor -%}
select
    cast(null as bigint) as _load_id,
    cast(null as text) as _source_file,
    cast(null as text) as _source_sha256,
    cast(null as text) as _source_sheet,
    cast(null as integer) as _source_row,
    cast(null as timestamptz) as _loaded_at,
    {{ casts | join(',\n    ') }}
where false
{%- else -%}
select * from {{ relation }}
{%- endif -%}
{%- endmacro %}
