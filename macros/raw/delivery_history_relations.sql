{#-
    The delivery-history tables staged in schema raw, found at build time rather than
    listed: every raw table whose layout in the catalogue (seed raw_layouts, macro
    raw_layout_matched) is a history layout: history_daily (the real export's 5 columns,
    one row per client and delivery day) or history_transaction (編號/客戶, 業務員, 交易日期,
    交易時間 and the 16 quantities). Both layouts' file_pattern is
    var('delivery_history_files'), so a daily file loaded after the migration joins with no
    change here. A model calling this declares `-- depends_on: {{ ref('raw_layouts') }}`
    so the catalogue is loaded first.

    Returns a list of {'relation', 'layout', 'columns'} (empty while dbt parses, when nothing
    is queried).
-#}
{% macro delivery_history_relations() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set tables = '(' ~ raw_tables_current(
        source('loader', 'sources'), source('loader', 'columns')) ~ ')' -%}
    {%- set query -%}
        select matched.table_name, matched.layout
        from ({{ raw_layout_matched(tables, ref('raw_layouts')) }}) as matched
        where matched.layout in ('history_daily', 'history_transaction')
        order by matched.table_name
    {%- endset -%}
    {%- set found = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- set relation = api.Relation.create(
            database=target.database, schema='raw', identifier=row[0]) -%}
        {%- do found.append({'relation': relation, 'layout': row[1],
                             'columns': raw_columns(relation)}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
