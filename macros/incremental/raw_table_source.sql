{#-
    The source a raw table holds now, from its rows' lineage: {'file', 'sheet', 'load_id'}
    of its first row, or none when the table is not in the database or is empty. A load
    replaces a table's rows whole (TRUNCATE, then COPY, in one transaction), so every row
    of a raw table has the same _source_file, _source_sheet and _load_id: a reloaded sheet
    or table has a new load id, a new file is a new table.
-#}
{% macro raw_table_source(relation) -%}
    {%- if not execute or relation.type == 'cte' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if adapter.get_relation(database=relation.database, schema=relation.schema,
            identifier=relation.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select _source_file, _source_sheet, _load_id::bigint from {{ relation }} limit 1
    {%- endset -%}
    {%- for row in run_query(query).rows -%}
        {{ return({'file': row[0], 'sheet': row[1], 'load_id': row[2]}) }}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}
