{#-
    The sources (source_file, source_sheet, load_id) whose rows a built relation holds, as a
    list of dicts {'file', 'sheet', 'load_id'} (empty while dbt parses, or when `relation`
    is none). A loose index scan (a recursive CTE, one index probe per source) over the
    relation's index on (load_id, source_file, source_sheet): a few milliseconds, however
    many rows it holds (load id first: an index led by source_file, source_sheet makes the
    planner rerun a per-source count of validation.raw_tables once per raw table). With
    load_column none, the (source_file, source_sheet) pairs alone (load_id none), over an
    index on those two.
-#}
{% macro staged_sources(relation, load_column='load_id') -%}
    {%- if not execute or relation is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set load = load_column or 'null::bigint' -%}
    {%- set later_load = 'later.' ~ load_column ~ ', ' if load_column else '' -%}
    {%- set found_load = 'found.load_id, ' if load_column else '' -%}
    {%- set query -%}
        with recursive found as (
            (
                select
                    source_file,
                    source_sheet,
                    {{ load }} as load_id
                from {{ relation }}
                order by {{ load_column ~ ', ' if load_column }}source_file, source_sheet
                limit 1
            )
            union all
            select
                next_source.source_file,
                next_source.source_sheet,
                next_source.load_id
            from found
            cross join lateral (
                select
                    later.source_file,
                    later.source_sheet,
                    {{ 'later.' ~ load_column if load_column else load }} as load_id
                from {{ relation }} as later
                where
                    ({{ later_load }}later.source_file, later.source_sheet)
                    > ({{ found_load }}found.source_file, found.source_sheet)
                order by {{ later_load }}later.source_file, later.source_sheet
                limit 1
            ) as next_source
        )
        select source_file, source_sheet, load_id from found
    {%- endset -%}
    {%- set found = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- do found.append({'file': row[0], 'sheet': row[1], 'load_id': row[2]}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
