{#-
    Whether a delivery raw table was written after its load since the model whose state is
    `state` (macro model_state) was built: a table of the same load id whose row count or
    xmin range differ from the ones recorded then (macro raw_delivery_versions). A load
    never does that (a reload is a new load id, handled source by source); a row edited,
    added or deleted in place by hand does, and the incremental delivery models then
    rebuild every row, as a full refresh would. A state without versions (a model built by
    an earlier version of the project) compares as unedited.
-#}
{% macro raw_edited_since(state) -%}
    {%- set recorded = state.get('raw', {}) -%}
    {%- if not execute or not recorded -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set current = raw_delivery_versions() -%}
    {%- for table, version in current.items() if table in recorded -%}
        {%- set then = recorded[table] -%}
        {%- if then[0] | int == version[0] and then | map('int') | list != version -%}
            {{ log('raw.' ~ table ~ ' was changed in place since ' ~ this.identifier
                ~ ' was built (same load ' ~ version[0] ~ '; rows ' ~ then[1] ~ ' -> '
                ~ version[1] ~ '): every row of it is built again', info=true) }}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
