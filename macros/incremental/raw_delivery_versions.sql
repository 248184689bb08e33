{#-
    The delivery raw tables as they stand now (every table of a history layout and the
    app's deliveries), as a dict {table name: [load id, rows, min xmin, max xmin]}; empty
    while dbt parses. A load writes a table's rows in one transaction, so they share one
    xmin (the PostgreSQL system column: the transaction that wrote the row version, kept as
    written when the row is frozen); any later INSERT, UPDATE or DELETE of a row changes
    the row count or the xmin range without changing the load id. Macro raw_edited_since
    compares these with the versions a model recorded when it was built. One scan of each
    table, without reading its cells (about 40 ms for the 350k-row history).
-#}
{% macro raw_delivery_versions() -%}
    {%- if not execute -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set relations = [] -%}
    {%- for relation in delivery_history_relations() | map(attribute='relation') | list
        + [source('legacy_app', 'deliveries')] -%}
        {%- if adapter.get_relation(database=relation.database, schema=relation.schema,
                identifier=relation.identifier) is not none -%}
            {%- do relations.append(relation) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if relations | length == 0 -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set query -%}
        {%- for relation in relations -%}
            select
                '{{ relation.identifier }}' as table_name,
                coalesce(max(_load_id::bigint), 0) as load_id,
                count(*) as row_count,
                coalesce(min(xmin::text::bigint), 0) as min_xmin,
                coalesce(max(xmin::text::bigint), 0) as max_xmin
            from {{ relation }}
            {{ 'union all' if not loop.last }}
        {% endfor -%}
    {%- endset -%}
    {%- set versions = {} -%}
    {%- for row in run_query(query).rows -%}
        {%- do versions.update({row[0]: [row[1] | int, row[2] | int, row[3] | int,
            row[4] | int]}) -%}
    {%- endfor -%}
    {{ return(versions) }}
{%- endmacro %}
