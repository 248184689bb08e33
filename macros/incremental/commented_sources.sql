{#- The sources a model's table says it has processed (its comment, post-hook
    comment_sources), as a list of {'file', 'sheet', 'load_id'}; empty when `relation` is
    none or has no such comment. -#}
{% macro commented_sources(relation) -%}
    {%- if not execute or relation is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set comment = run_query(
        "select coalesce(obj_description('" ~ relation ~ "'::regclass, 'pg_class'), '')"
    ).rows[0][0] -%}
    {%- set prefix = 'luckygas sources ' -%}
    {%- set found = [] -%}
    {%- if comment.startswith(prefix) -%}
        {%- for listed in fromjson(comment[prefix | length:]) -%}
            {%- do found.append({'file': listed[0], 'sheet': listed[1], 'load_id': listed[2]}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}
