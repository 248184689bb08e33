{#-
    `select * from` a source table, or, when the table is not in the database (that export
    was not loaded yet: a first phase of the migration with the client workbook alone, or
    the workbook and the app database without the history), an empty relation of the same
    shape, every source column as text beside the loader's lineage columns (macro
    raw_table_columns), with one line in the log ("... not loaded yet: built empty"), so the
    models downstream build, and reconcile, to zero rows instead of failing. Which files
    were loaded is validation.raw_tables' business, not a build error. A model reading the
    client master this way declares `-- depends_on: {{ ref('source_columns') }}` (its
    columns come from the column map). In a unit test the source is the test's fixture (a
    CTE), always read.
-#}
{% macro source_or_empty(source_name, table_name) -%}
{%- set relation = source(source_name, table_name) -%}
{%- set missing = execute and relation.type != 'cte' and adapter.get_relation(
    database=relation.database, schema=relation.schema,
    identifier=relation.identifier) is none -%}
{%- if missing -%}
{{- log_built_empty('raw table ' ~ relation.schema ~ '.' ~ relation.identifier
    ~ ' (source ' ~ source_name ~ '.' ~ table_name ~ ')') -}}
{%- set casts = [] -%}
{%- set columns = raw_table_columns(source_name, table_name) -%}
{%- for column in columns -%}
    {%- do casts.append('cast(null as ' ~ columns[column] ~ ') as ' ~ adapter.quote(column)) -%}
{%- endfor -%}
select
    {{ casts | join(',\n    ') }}
where false
{%- else -%}
select * from {{ relation }}
{%- endif -%}
{%- endmacro %}
